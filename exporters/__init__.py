"""Custom Prometheus exporters: tenant events and business figures in, bounded tenant-labelled metrics out."""

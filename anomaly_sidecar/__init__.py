"""Statistical anomaly detection and forecasting over Prometheus series, written back as metrics."""

"""The live view: the generated dashboards drawn in a browser with live data, without Grafana.

``model`` reads a dashboard's JSON (Grafana's current model) into what the page draws; ``variables``
resolves its variables (the tenant fixed to a tenant key's own); ``evaluate`` runs its queries with
bounded range, points and concurrency through a ``read.Reader``; ``frames`` shapes the answers for
plotly; ``page`` renders the HTML; ``app`` serves it all (``tenantpulse dashboards serve``, and the
gateway's ``/dashboards`` route through ``gateway_reader``); ``snapshot`` takes the PNGs.
"""

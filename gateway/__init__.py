"""The read-path gateway: a Prometheus-HTTP-API server in front of any Prometheus-compatible backend that
answers each tenant key from that tenant's series only (``enforce``: the PromQL rewrite; ``app``: the
server; ``cli``: ``tenantpulse gateway``)."""

from tenantpulse.gateway.enforce import BadQuery, EnforceError, Forbidden, enforce, enforce_match

__all__ = ["BadQuery", "EnforceError", "Forbidden", "enforce", "enforce_match"]

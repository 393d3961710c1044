"""Security: API keys, audit trail, TLS and encrypted state."""

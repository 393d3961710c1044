"""``tenantpulse demo``: the whole stack on loopback, one module per component (``cli`` orders them)."""

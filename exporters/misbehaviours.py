"""The ways a synthetic tenant can misbehave, named apart from the traffic generator (numpy, requests)
so that ``tenantpulse demo --help`` can list them without loading it."""

from __future__ import annotations

from typing import Literal

Misbehaviour = Literal["error_spike", "traffic_drop"]
MISBEHAVIOURS: tuple[Misbehaviour, ...] = ("error_spike", "traffic_drop")

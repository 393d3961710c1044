"""The unique-user run of ``test_redis_replicas`` against a 3-master Redis Cluster: three replicas with
``--redis-cluster``, each tenant's keys in one slot (hash tag ``{tenant}``), the tenants spread over
the masters."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantpulse.exporters import redis_keys
from tests.exporters.test_redis_replicas import FAST, check_unique_users
from tests.support.exporter import Replicas
from tests.support.redis import RedisClusterServers, tenant_keys

pytestmark = pytest.mark.integration


def test_unique_users_over_three_replicas_on_a_three_master_cluster(tmp_path: Path) -> None:
    with (
        RedisClusterServers(tmp_path / "cluster") as cluster,
        Replicas(tmp_path, 3, cluster.url, cluster=True, extra_args=FAST) as rs,
    ):
        check_unique_users(rs, cluster.client(), tmp_path / "prom")
        client = cluster.client()
        for tenant in ("t1", "t2", "t3"):
            slots = {client.keyslot(k) for k in tenant_keys(client, tenant)}
            slots.add(client.keyslot(redis_keys.generation(tenant)))
            assert len(slots) == 1  # one slot per tenant: one Lua script may touch all its keys
        masters = {client.get_node_from_key(redis_keys.types(t)).name for t in ("t1", "t2", "t3")}
        print(f"tenants t1, t2, t3 on {len(masters)} of 3 masters")

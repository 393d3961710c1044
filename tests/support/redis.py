"""A real Redis (Debian ``redis-server``) on a free loopback port, and a 3-master Redis Cluster.

Usage::

    from tests.support.redis import RedisServer, RedisClusterServers, tenant_memory

    with RedisServer(tmp_path / "redis") as server:      # --save '' --appendonly no
        server.url                                       # "redis://127.0.0.1:PORT/0"
        server.client().ping()
        server.stop(); server.start()                    # the same port and data directory again
    with RedisClusterServers(tmp_path / "cluster") as cluster:
        cluster.url                                      # a seed node, for --redis-url with --redis-cluster
        cluster.client()                                 # a redis.cluster.RedisCluster

Tests skip with a message where ``redis-server`` / ``redis-cli`` are not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import pytest
import redis
from redis.cluster import RedisCluster

from tenantpulse.exporters import redis_keys
from tests.support.ports import free_port, wait_until


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} not installed (apt-get install redis-server redis-tools)")
    return path


class RedisServer:
    """One ``redis-server``; ``aof=True`` turns on the append-only file (fsync every write)."""

    def __init__(self, workdir: Path, aof: bool = False, extra_args: Sequence[str] = ()) -> None:
        self.binary = require("redis-server")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        durability = ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
        self.command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--dir", str(self.workdir), "--daemonize", "no", *durability, *extra_args,
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> RedisServer:
        self._log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.client().ping(), timeout=20, what=f"redis-server on {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisClusterServers:
    """Three masters (no replicas) joined by ``redis-cli --cluster create``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.nodes = [
            RedisServer(
                self.workdir / f"node{i}",
                # The bus port defaults to port + 10000, past 65535 for most free ports: give one.
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    str(free_port()),
                ],  # fmt: skip
            )
            for i in range(3)
        ]
        self.url = self.nodes[0].url.removesuffix("/0")

    def start(self) -> RedisClusterServers:
        cli = require("redis-cli")
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
            subprocess.run(
                [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            wait_until(self._ready, timeout=30, what="cluster_state:ok on every node")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        return all(n.client().cluster("info")["cluster_state"] == "ok" for n in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def client(self) -> RedisCluster:
        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, socket_timeout=5)

    def __enter__(self) -> RedisClusterServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tenant_keys(client: Any, tenant: str) -> list[bytes]:
    """Every data key of the tenant (``redis_keys`` layout), on a server or a cluster."""
    return list(client.scan_iter(match=redis_keys.tenant_keys(tenant), count=1000))


def tenant_memory(client: Any, tenant: str) -> int:
    """Bytes Redis holds for the tenant's keys (MEMORY USAGE, all samples)."""
    return sum(int(client.memory_usage(k, samples=0) or 0) for k in tenant_keys(client, tenant))

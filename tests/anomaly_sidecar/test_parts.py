"""Registry + sharding, atomic state files, and the /metrics renderer (checked by promtool and the
prometheus_client parser)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenantpulse.anomaly_sidecar import state
from tenantpulse.anomaly_sidecar.exposition import (
    FORECAST_FAMILIES,
    HEALTH_FAMILIES,
    SERIES_FAMILIES,
    OutputTable,
)
from tenantpulse.anomaly_sidecar.registry import Registry, shard_of
from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.kernel.errors import UsageError
from tenantpulse.security.state_crypto import StateCipher, new_key_hex
from tests.support.prometheus import require


class Slots:
    """A stand-in allocator with the bank's contract: fresh indices, counted."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, n: int) -> np.ndarray:
        self.n += n
        return np.arange(self.n - n, self.n)


TENANTS = [f"tenant-{i}" for i in range(300)]


def test_registry_adds_new_series_once_and_finds_them_again() -> None:
    slots = Slots()
    reg = Registry(slots)
    pos, idx = reg.resolve("request_rate", ["a", "b", "c"])
    assert pos.tolist() == [0, 1, 2] and idx.tolist() == [0, 1, 2]
    pos, idx = reg.resolve("request_rate", ["c", "d", "a"])
    assert idx.tolist() == [2, 0, 3] and pos.tolist() == [0, 2, 1]
    assert slots.n == 4 and len(reg) == 4
    assert reg.get(("d", "request_rate")) == 3
    assert reg.remove([("a", "request_rate"), ("zz", "x")]).tolist() == [0]
    assert ("a", "request_rate") not in reg


def test_two_shards_are_disjoint_and_complete() -> None:
    shards = [Registry(Slots(), shard_index=i, shard_count=2) for i in range(2)]
    for name in indicators.WATCHED:
        for reg in shards:
            reg.resolve(name, TENANTS)
    keys = [{k for k, _ in reg.items()} for reg in shards]
    everything = {(t, n) for t in TENANTS for n in indicators.WATCHED}
    assert keys[0].isdisjoint(keys[1])
    assert keys[0] | keys[1] == everything
    assert 0.4 < len(keys[0]) / len(everything) < 0.6  # the hash spreads the work


def test_shard_assignment_is_stable_across_processes() -> None:
    """blake2b, not Python's salted hash(): another interpreter must agree."""
    code = "from anomaly_sidecar.registry import shard_of; print([shard_of((f't{i}', 'x'), 3) for i in range(50)])"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(["python", "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == str([shard_of((f"t{i}", "x"), 3) for i in range(50)])


@pytest.mark.parametrize(("index", "count"), [(2, 2), (-1, 2), (0, 0)])
def test_bad_shard_flags_are_refused(index: int, count: int) -> None:
    with pytest.raises(UsageError, match="shard"):
        Registry(Slots(), shard_index=index, shard_count=count)


def test_state_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.bin"
    assert state.load(path) is None
    arrays = {"a": np.arange(5.0), "b": np.array([True, False])}
    state.save(path, state.pack(arrays, {"series": [["t1", "x", 0]]}))
    state.save(path, state.pack({"a": np.arange(3.0)}, {"n": 2}))
    got, meta = state.unpack(state.load(path))
    assert got["a"].tolist() == [0.0, 1.0, 2.0] and meta == {"n": 2}
    assert [p.name for p in path.parent.iterdir()] == ["state.bin"]  # no temp file left behind


@pytest.mark.parametrize("name", ["__meta__", "allow_pickle", "file"])
def test_state_array_names_that_savez_would_misread_are_refused(name: str) -> None:
    # np.savez took an array named "allow_pickle" for its flag and left it out of the file (found by mypy).
    with pytest.raises(ValueError, match=f"array name '{name}' is reserved"):
        state.pack({name: np.arange(2.0)}, {})


def test_state_encrypted_with_the_security_cipher(tmp_path: Path) -> None:
    path = tmp_path / "state.bin"
    codec = state.CipherCodec(StateCipher(bytes.fromhex(new_key_hex())))
    payload = state.pack({"level": np.array([42.0])}, {"secret_tenant": "acme"})
    state.save(path, payload, codec)
    assert b"acme" not in path.read_bytes()
    assert state.unpack(state.load(path, codec))[1] == {"secret_tenant": "acme"}
    with pytest.raises(state.StateError, match="codec 'aes-256-gcm'"):
        state.load(path)  # read as plain: refused, not misread
    other = state.CipherCodec(StateCipher(bytes.fromhex(new_key_hex())))
    with pytest.raises(state.StateError, match="wrong key"):
        state.load(path, other)


def test_corrupt_state_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.bin"
    path.write_bytes(b"garbage")
    with pytest.raises(state.StateError, match="not a tenantpulse state file"):
        state.load(path)
    state.save(path, b"not an npz")
    with pytest.raises(state.StateError, match="corrupt"):
        state.unpack(state.load(path))


def filled_table(n: int) -> OutputTable:
    table = OutputTable(horizon="1h")
    keys = [(f"t{i}", "request_rate") for i in range(n)] + [('we"ird\\ten\nant', "error_rate")]
    idx = np.arange(len(keys))
    table.add(keys, idx)
    for k, m in enumerate(SERIES_FAMILIES):
        table.set(m, idx, np.arange(len(keys)) + k / 10)
    table.set(c.FORECAST, idx[:2], np.array([1.0, np.inf]))  # the rest have no forecast yet
    table.set_health(c.SIDECAR_SERIES, len(keys))
    table.set_health(c.SIDECAR_QUERY_ERRORS, 3)
    table.render_series()
    return table


def test_exposition_values_and_labels_parse_back() -> None:
    body = filled_table(3).body().decode()
    fams = {f.name: f for f in text_string_to_metric_families(body)}
    score = {s.labels[c.TENANT]: s.value for s in fams[c.ANOMALY_SCORE.name].samples}
    assert score == {"t0": 0.0, "t1": 1.0, "t2": 2.0, 'we"ird\\ten\nant': 3.0}
    upper = fams[c.ANOMALY_UPPER.name].samples[1]
    assert upper.value == pytest.approx(1.3) and upper.labels[c.INDICATOR] == "request_rate"
    forecast = fams[c.FORECAST.name].samples
    assert [(s.labels[c.HORIZON], s.value) for s in forecast] == [("1h", 1.0), ("1h", float("inf"))]
    assert len(fams[c.FORECAST_LOWER.name].samples) == 0  # NaN = not known yet: left out
    errors = fams[c.SIDECAR_QUERY_ERRORS.family]
    assert errors.type == "counter" and errors.samples[0].name == c.SIDECAR_QUERY_ERRORS.name
    assert errors.samples[0].value == 3
    assert fams[c.SIDECAR_SERIES.name].samples[0].value == 4


def test_removed_series_disappear_from_the_exposition() -> None:
    table = filled_table(3)
    table.remove(np.array([1]))
    table.render_series()
    body = table.body().decode()
    assert 'tenant="t1"' not in body and 'tenant="t2"' in body


def test_exposition_passes_promtool(tmp_path: Path) -> None:
    promtool = require("promtool")
    body = filled_table(50).body()
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


def test_every_exposed_family_is_from_the_catalog() -> None:
    body = filled_table(2).body().decode()
    names = {line.split()[2] for line in body.splitlines() if line.startswith("# TYPE")}
    assert names == {m.name for m in SERIES_FAMILIES + FORECAST_FAMILIES + HEALTH_FAMILIES}
    assert names <= set(c.BY_NAME)


def test_rows_without_a_tenant_are_not_tracked() -> None:
    slots = Slots()
    reg = Registry(slots)
    pos, idx = reg.resolve_keys([("", "request_rate"), ("a", "request_rate"), ("a", "error_rate")])
    assert pos.tolist() == [1, 2] and slots.n == 2  # one allocation for both new series

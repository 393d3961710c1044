"""The real sidecar's state at rest: AES-256-GCM with a key from a file or the environment.

The saved file is ciphertext (no tenant name in it) that decrypts to the models; a restart with the
right key restores them; a wrong key, a flipped byte or no key at all makes the sidecar refuse to start
with a one-line message and exit code 2 — no traceback — and leaves the file exactly as it was.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tenantpulse.anomaly_sidecar import state as state_file
from tenantpulse.cli import main
from tenantpulse.exporters.traffic import TenantProfile, TrafficGenerator
from tenantpulse.security.state_crypto import ENV_VAR, MAGIC, StateCipher, new_key_hex
from tests.support.exporter import REPO, Exporter
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus
from tests.support.sidecar import Sidecar

pytestmark = pytest.mark.integration

TENANTS = ("tenant-alpha-7f3", "tenant-beta-9c1")  # long enough not to occur in ciphertext by chance
ARGS = ["--indicators", "request_rate", "--interval", "500ms", "--rate-window", "2s", "--backfill", "5s"]


def run_to_exit(sidecar: Sidecar, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Start the sidecar's command and wait for it to give up (it must, before binding)."""
    inherited = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    full_env = {**inherited, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(sidecar.command, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=60)


def test_encrypted_state_round_trip_and_refusals(tmp_path: Path) -> None:
    key_hex = new_key_hex()
    key_file = tmp_path / "state.key"
    key_file.write_text(key_hex + "\n")
    with Exporter(tmp_path / "exporter", tenants=TENANTS) as exporter:
        traffic = TrafficGenerator(
            exporter.url, [TenantProfile(t, exporter.keys[t], rate=50.0) for t in TENANTS]
        )
        traffic.start(interval=0.5)
        try:
            with Prometheus(tmp_path, [exporter.scrape_config()], scrape_interval="500ms") as prom:
                wait_until(
                    lambda: len(prom.query("tenantpulse_events_total")) >= 2, what="traffic in Prometheus"
                )
                sidecar = Sidecar(
                    tmp_path / "sidecar",
                    prom.url,
                    tenants=TENANTS,
                    extra_args=[*ARGS, "--state-key-file", str(key_file)],
                )
                with sidecar:
                    wait_until(
                        lambda: len(sidecar.get("/analytics/ml/models", key="admin").json()["models"]) == 2,
                        what="models for both tenants",
                    )
                # Stopped: the state was saved, encrypted.
                blob = sidecar.state_file.read_bytes()
                codec = state_file.CipherCodec(StateCipher(bytes.fromhex(key_hex)))
                assert blob.startswith(state_file.MAGIC) and MAGIC in blob[:40]
                assert all(t.encode() not in blob for t in TENANTS)
                _, meta = state_file.unpack(state_file.load(sidecar.state_file, codec))  # type: ignore[arg-type]
                assert {t for t, _, _ in meta["series"]} == set(TENANTS)

                # Wrong key (from the environment this time): refused, file untouched.
                wrong = Sidecar(
                    tmp_path / "sidecar", prom.url, tenants=TENANTS, extra_args=ARGS, port=sidecar.port
                )
                result = run_to_exit(wrong, env={ENV_VAR: new_key_hex()})
                assert result.returncode == 2, result.stderr
                assert "cannot decrypt: wrong key, or the file was altered" in result.stderr
                assert "Traceback" not in result.stderr + result.stdout
                assert sidecar.state_file.read_bytes() == blob

                # No key at all: the encrypted file is not silently replaced by a plain one.
                result = run_to_exit(wrong)
                assert result.returncode == 2 and "aes-256-gcm" in result.stderr, result.stderr
                assert sidecar.state_file.read_bytes() == blob

                # One flipped byte in the ciphertext: refused the same way.
                tampered = bytearray(blob)
                tampered[-20] ^= 0x01
                sidecar.state_file.write_bytes(bytes(tampered))
                result = run_to_exit(sidecar)
                assert result.returncode == 2 and "was altered" in result.stderr, result.stderr
                assert "Traceback" not in result.stderr + result.stdout
                assert sidecar.state_file.read_bytes() == bytes(tampered)

                # The right key and the intact file: the models come back.
                sidecar.state_file.write_bytes(blob)
                with sidecar:
                    models = sidecar.get("/analytics/ml/models", key="admin").json()["models"]
                    assert {m["tenant_id"] for m in models} == set(TENANTS)
                assert "state restored" in sidecar.log_path.read_text()
        finally:
            traffic.stop()


def test_rekey_rotates_the_state_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``tenantpulse state rekey``: old key -> new key; a wrong old key is exit 2 and leaves the file alone."""
    old, new, wrong = (tmp_path / n for n in ("old.key", "new.key", "wrong.key"))
    for path in (old, new, wrong):
        path.write_text(new_key_hex())
    state = tmp_path / "state.bin"
    payload = state_file.pack({"x": np.arange(3.0)}, {"version": 1})
    state_file.save(state, payload, codec(old))

    before = state.read_bytes()
    assert main(["state", "rekey", str(state), "--old-key-file", str(wrong), "--new-key-file", str(new)]) == 2
    assert "cannot decrypt" in capsys.readouterr().err
    assert state.read_bytes() == before

    assert main(["state", "rekey", str(state), "--old-key-file", str(old), "--new-key-file", str(new)]) == 0
    assert state_file.load(state, codec(new)) == payload
    with pytest.raises(state_file.StateError):
        state_file.load(state, codec(old))
    # Decrypt to plain and encrypt a plain file.
    assert main(["state", "rekey", str(state), "--old-key-file", str(new)]) == 0
    assert state_file.load(state, state_file.PLAIN) == payload
    assert main(["state", "rekey", str(state), "--new-key-file", str(old)]) == 0
    assert state_file.load(state, codec(old)) == payload


def codec(key_file: Path) -> state_file.CipherCodec:
    return state_file.CipherCodec(StateCipher(bytes.fromhex(key_file.read_text())))


@pytest.mark.parametrize("cut", ["ciphertext", "header-plus-garbage"])
def test_damaged_encrypted_state_is_refused_and_left_alone(tmp_path: Path, cut: str) -> None:
    """AES-GCM cannot tell a damaged file from a wrong key, so a damaged encrypted file is not set aside
    (that would discard the models of an operator who only gave the wrong key): one line, exit 2."""
    key_file = tmp_path / "state.key"
    key_file.write_text(new_key_hex())
    sidecar = Sidecar(tmp_path, "http://127.0.0.1:9", extra_args=["--state-key-file", str(key_file)])
    state_file.save(
        sidecar.state_file, state_file.pack({"x": np.arange(3.0)}, {"version": 1}), codec(key_file)
    )
    blob = sidecar.state_file.read_bytes()
    damaged = blob[: len(blob) * 2 // 3] if cut == "ciphertext" else blob[:40] + b"garbage" * 50
    sidecar.state_file.write_bytes(damaged)
    result = run_to_exit(sidecar)
    assert result.returncode == 2, result.stderr
    assert "cannot decrypt" in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert sidecar.state_file.read_bytes() == damaged
    assert not list(tmp_path.glob("sidecar-state.bin.damaged-*"))

"""A damaged state file, and the leftovers of killed saves, at the real sidecar's start.

A state file whose bytes are broken (truncated anywhere, a flipped byte, the header plus garbage, an
empty file...) is ours but unreadable by anyone: the sidecar moves it to ``<file>.damaged-<time>``,
logs it, counts it in ``tenantpulse_sidecar_state_discarded_total`` and starts fresh, so the next start
restores normally instead of crashing again. The temporary files of saves killed before their rename
are removed at start; nothing else in the directory is touched.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tenantpulse.anomaly_sidecar import state as state_file
from tenantpulse.anomaly_sidecar.reader import PrometheusReader
from tenantpulse.anomaly_sidecar.service import ServiceConfig, SidecarService
from tenantpulse.conventions import catalog as c
from tests.support.sidecar import FakePrometheusApi, Sidecar, matrix_answer, vector_answer

pytestmark = pytest.mark.integration

TENANTS = ("t1", "t2")
ARGS = ["--indicators", "request_rate", "--forecast-every", "1h"]
DISCARDED = c.SIDECAR_STATE_DISCARDED.name


def answer(path: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, Any]:
    if path.endswith("/query"):
        t = float(form["time"])
        return 200, vector_answer([({c.TENANT: x}, 10.0 + i) for i, x in enumerate(TENANTS)], t)
    start, end, step = float(form["start"]), float(form["end"]), float(form["step"])
    n = int((end - start) / step) + 1
    return 200, matrix_answer(
        [({c.TENANT: x}, [(start + k * step, 10.0 + i) for k in range(n)]) for i, x in enumerate(TENANTS)]
    )


@pytest.fixture(scope="module")
def api() -> Iterator[FakePrometheusApi]:
    with FakePrometheusApi(answer) as fake:
        yield fake


@pytest.fixture(scope="module")
def good_state(api: FakePrometheusApi, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A state file as the sidecar writes it, with both tenants' models."""
    path = tmp_path_factory.mktemp("good") / "state.bin"
    config = ServiceConfig(
        indicators=("request_rate",), rate_window=10.0, backfill=60.0, state_path=str(path)
    )
    service = SidecarService(PrometheusReader(api.url, retries=0, timeout=2), config)
    service.cycle()
    service.save_state()
    assert len(service.registry) == len(TENANTS)
    return path.read_bytes()


def header() -> bytes:
    return state_file.MAGIC + bytes([len(state_file.PLAIN.name)]) + state_file.PLAIN.name.encode()


def not_our_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "a zip, but not a state payload")
    return buf.getvalue()


def flip(blob: bytes, at: int) -> bytes:
    out = bytearray(blob)
    out[at] ^= 0xFF
    return bytes(out)


VARIANTS = {
    "empty": lambda g: b"",
    "cut-inside-the-magic": lambda g: g[:5],
    "cut-inside-the-header": lambda g: header()[:-2],
    "header-only": lambda g: header(),
    "cut-at-a-tenth": lambda g: g[: len(header()) + (len(g) - len(header())) // 10],
    "cut-at-half": lambda g: g[: len(g) // 2],
    "cut-last-byte": lambda g: g[:-1],
    "flipped-byte": lambda g: flip(g, (len(header()) + len(g)) // 2),
    "header-plus-garbage": lambda g: header() + b"\x00\xffgarbage" * 200,
    "zip-but-not-a-state": lambda g: header() + not_our_zip(),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_damaged_state_is_set_aside_and_the_sidecar_starts_fresh(
    variant: str, good_state: bytes, api: FakePrometheusApi, tmp_path: Path
) -> None:
    damaged = VARIANTS[variant](good_state)
    sidecar = Sidecar(tmp_path, api.url, tenants=TENANTS, extra_args=ARGS)
    sidecar.state_file.write_bytes(damaged)
    with sidecar:  # waits for /readyz: it did not crash
        assert f"{DISCARDED} 1.0" in sidecar.metrics()
    log = sidecar.log_path.read_text()
    assert "Traceback" not in log, log
    assert "state file damaged, starting fresh" in log, log
    aside = list(tmp_path.glob("sidecar-state.bin.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged  # kept for inspection, as it was
    # It saved a fresh file on the way out: the next start restores it, nothing is set aside again.
    _, meta = state_file.unpack(state_file.load(sidecar.state_file))  # type: ignore[arg-type]
    assert {t for t, _, _ in meta["series"]} == set(TENANTS)
    with sidecar:
        assert f"{DISCARDED} 0.0" in sidecar.metrics()
    assert sidecar.log_path.read_text().count("state restored") == 1
    assert len(list(tmp_path.glob("sidecar-state.bin.damaged-*"))) == 1


def test_a_start_removes_the_temporary_files_of_killed_saves_only(
    good_state: bytes, api: FakePrometheusApi, tmp_path: Path
) -> None:
    sidecar = Sidecar(tmp_path, api.url, tenants=TENANTS, extra_args=ARGS)
    sidecar.state_file.write_bytes(good_state)
    # What a save killed between mkstemp and the rename leaves: named exactly the way the saver names it.
    leftovers = []
    for _ in range(3):
        fd, name = tempfile.mkstemp(prefix=f".{sidecar.state_file.name}.", suffix=".tmp", dir=tmp_path)
        with open(fd, "wb") as fh:
            fh.write(good_state[: len(good_state) // 2])
        leftovers.append(Path(name))
    others = [
        tmp_path / f".{sidecar.state_file.name}.not-ours.tmp",  # not the saver's random part
        tmp_path / f".{sidecar.state_file.name}.abcd1234.tmp.bak",
        tmp_path / f"{sidecar.state_file.name}.abcd1234.tmp",  # no leading dot
        tmp_path / ".other-state.bin.abcd1234.tmp",  # another state file's temporary file
        tmp_path / "notes.tmp",
    ]
    for path in others:
        path.write_bytes(b"keep me")
    (tmp_path / "sub").mkdir()
    nested = tmp_path / "sub" / f".{sidecar.state_file.name}.abcd1234.tmp"  # another directory
    nested.write_bytes(b"keep me")
    with sidecar:
        models = sidecar.get("/analytics/ml/models", key="admin").json()["models"]
        assert {m["tenant_id"] for m in models} == set(TENANTS)  # the state itself was restored
        assert not any(p.exists() for p in leftovers)
    log = sidecar.log_path.read_text()
    assert "removed temporary files of interrupted state saves" in log, log
    assert all(str(p) in log for p in leftovers)
    assert all(p.read_bytes() == b"keep me" for p in [*others, nested])
    assert "state restored" in log and "Traceback" not in log


def test_a_damaged_state_that_cannot_be_moved_aside_is_refused(
    api: FakePrometheusApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting fresh would overwrite the file at the first save: without the move, refuse (exit 2)."""
    path = tmp_path / "state.bin"
    path.write_bytes(header() + b"garbage")

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tenantpulse.anomaly_sidecar.service.os.replace", refuse)
    config = ServiceConfig(indicators=("request_rate",), state_path=str(path))
    with pytest.raises(state_file.StateError, match="cannot be moved aside: Permission denied"):
        SidecarService(PrometheusReader(api.url, retries=0, timeout=2), config)
    assert path.read_bytes() == header() + b"garbage"

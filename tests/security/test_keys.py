"""API keys: hashed at rest, scoped to a tenant, expiring; the CLI makes a key and its keys-file line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tenantpulse.cli import main
from tenantpulse.kernel.errors import UsageError
from tenantpulse.security.keys import KeyRing, sha256_hex


def _ring(tmp_path: Path, entries: list[dict]) -> KeyRing:
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump({"keys": entries}))
    return KeyRing.from_file(path)


def test_plain_and_hashed_keys_authenticate(tmp_path: Path) -> None:
    ring = _ring(
        tmp_path,
        [
            {"key": "dev-t1", "tenant": "t1", "scopes": ["read", "write"]},
            {"key_sha256": sha256_hex("ops-secret"), "tenant": "*", "scopes": ["admin"], "id": "ops"},
        ],
    )
    t1 = ring.authenticate("dev-t1")
    ops = ring.authenticate("ops-secret")
    assert t1 is not None and ops is not None and ops.key_id == "ops"
    assert ring.authenticate("dev-t2") is None
    assert "dev-t1" not in repr(t1)


def test_scope_and_tenant_matrix(tmp_path: Path) -> None:
    ring = _ring(
        tmp_path,
        [
            {"key": "w1", "tenant": "t1", "scopes": ["write"]},
            {"key": "r1", "tenant": "t1", "scopes": ["read"]},
            {"key": "admin", "tenant": "*", "scopes": ["admin"]},
        ],
    )
    w1, r1, admin = (ring.authenticate(k) for k in ("w1", "r1", "admin"))
    assert w1.allows("t1", "write") and not w1.allows("t1", "read") and not w1.allows("t2", "write")
    assert r1.allows("t1", "read") and not r1.allows("t2", "read") and not r1.allows("t1", "admin")
    assert admin.allows("t2", "write") and admin.allows(None, "admin")


def test_expired_key_is_refused(tmp_path: Path) -> None:
    ring = _ring(
        tmp_path,
        [
            {"key": "old", "tenant": "t1", "scopes": ["read"], "expires": "2020-01-01T00:00:00Z"},
            {"key": "new", "tenant": "t1", "scopes": ["read"], "expires": "2999-01-01T00:00:00Z"},
        ],
    )
    assert ring.authenticate("old") is None
    assert ring.authenticate("new") is not None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"tenant": "t1", "scopes": ["read"]}, "exactly one of 'key' or 'key_sha256'"),
        ({"key": "k", "tenant": "t1", "scopes": ["root"]}, "'scopes' must be"),
        ({"key_sha256": "abc", "tenant": "t1", "scopes": ["read"]}, "64 hex"),
        ({"key": "k", "scopes": ["read"]}, "'tenant' is required"),
        ({"key": "k", "tenant": "t1", "scopes": ["read"], "colour": "red"}, "unknown field"),
        ({"key": "k", "tenant": "t1", "scopes": ["read"], "expires": "soon"}, "ISO 8601"),
    ],
)
def test_bad_keys_file_names_the_entry(tmp_path: Path, entry: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        _ring(tmp_path, [entry])
    assert "keys[0]" in str(info.value)


def test_cli_creates_a_key_whose_line_authenticates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "read,write", "--id", "acme-app"]) == 0
    out = capsys.readouterr().out.splitlines()
    key, line = out[0], out[1]
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text("keys:\n" + line + "\n")
    assert key not in keys_file.read_text()
    found = KeyRing.from_file(keys_file).authenticate(key)
    assert found is not None and found.key_id == "acme-app" and found.allows("acme", "write")


def test_cli_rejects_bad_scopes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "read,root"]) == 2
    assert "--scopes" in capsys.readouterr().err

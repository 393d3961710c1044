"""Encrypted state: round trip; wrong key, tampering, truncation and bad keys are refused with a message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tenantpulse.kernel.errors import UsageError
from tenantpulse.security.state_crypto import (
    ENV_VAR,
    StateCipher,
    StateDecryptError,
    load_key,
    new_key_hex,
    parse_key,
)

KEY = bytes(range(32))


def test_round_trip_and_fresh_nonce() -> None:
    cipher = StateCipher(KEY)
    a, b = cipher.encrypt(b"baselines"), cipher.encrypt(b"baselines")
    assert a != b and b"baselines" not in a
    assert cipher.decrypt(a) == b"baselines"


def test_wrong_key_is_refused() -> None:
    blob = StateCipher(KEY).encrypt(b"x" * 100)
    with pytest.raises(StateDecryptError, match="wrong key, or the file was altered"):
        StateCipher(bytes(32)).decrypt(blob, "state.bin")


@pytest.mark.parametrize("position", [0, 9, 30, -1])
def test_any_flipped_byte_is_refused(position: int) -> None:
    blob = bytearray(StateCipher(KEY).encrypt(b"y" * 64))
    blob[position] ^= 0x01
    with pytest.raises(StateDecryptError):
        StateCipher(KEY).decrypt(bytes(blob))


def test_truncated_or_plain_file_is_refused() -> None:
    with pytest.raises(StateDecryptError, match="not an encrypted"):
        StateCipher(KEY).decrypt(b'{"plain": "json"}')
    with pytest.raises(StateDecryptError):
        StateCipher(KEY).decrypt(StateCipher(KEY).encrypt(b"z" * 50)[:-5])


def test_keys_from_file_env_hex_and_base64(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hexkey = new_key_hex()
    key_file = tmp_path / "state.key"
    key_file.write_text(hexkey + "\n")
    assert load_key(key_file) == bytes.fromhex(hexkey)
    monkeypatch.setenv(ENV_VAR, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    assert load_key() == KEY
    monkeypatch.delenv(ENV_VAR)
    assert load_key() is None
    with pytest.raises(UsageError, match="32 bytes"):
        parse_key("abcd", "test")
    with pytest.raises(UsageError, match="cannot read state key file"):
        load_key(tmp_path / "nope")
    assert os.environ.get(ENV_VAR) is None

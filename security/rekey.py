"""``tenantpulse state rekey``: re-encrypt the sidecar's state file under a new key (state key rotation).

Run it while the sidecar is stopped, then start the sidecar with the new key. The file is decrypted with
the old key (or read as plain state when ``--old-key-file`` is omitted), checked to be a state payload,
and replaced atomically, so an interrupted run leaves the old file in place.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tenantpulse.kernel.errors import UsageError


def _codec(key_file: str | None) -> Any:
    from tenantpulse.anomaly_sidecar import state as state_file  # numpy, cryptography: not for --help
    from tenantpulse.security.state_crypto import StateCipher, load_key

    if key_file is None:
        return state_file.PLAIN
    key = load_key(key_file)
    assert key is not None  # load_key with a file returns a key or raises
    return state_file.CipherCodec(StateCipher(key))


def rekey(path: Path, old_key_file: str | None, new_key_file: str | None) -> None:
    from tenantpulse.anomaly_sidecar import state as state_file

    if not path.is_file():
        raise UsageError(f"no such state file: {path}")
    if old_key_file is None and new_key_file is None:
        raise UsageError("give --new-key-file (to encrypt) and/or --old-key-file (to decrypt)")
    try:
        payload = state_file.load(path, _codec(old_key_file))
        assert payload is not None
        state_file.unpack(payload)  # refuse to re-encrypt something that is not a state payload
    except state_file.StateError as exc:
        raise UsageError(str(exc)) from None
    state_file.save(path, payload, _codec(new_key_file))


def _run(args: argparse.Namespace) -> int:
    rekey(Path(args.state_file), args.old_key_file, args.new_key_file)
    print(f"{args.state_file}: re-encrypted" if args.new_key_file else f"{args.state_file}: decrypted")
    return 0


def register(root: argparse._SubParsersAction, generate: argparse._SubParsersAction) -> None:
    state = root.add_parser("state", help="maintain the sidecar's state file")
    sub = state.add_subparsers(dest="state_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser(
        "rekey",
        help="re-encrypt the state file under a new key (run with the sidecar stopped)",
        description="Rotate the AES-256-GCM state key: decrypt with --old-key-file, encrypt with "
        "--new-key-file. Omit --old-key-file to encrypt a plain file; omit --new-key-file to decrypt.",
    )
    p.add_argument("state_file", help="the sidecar's --state-file")
    p.add_argument("--old-key-file", metavar="FILE", help="key the file is encrypted with now")
    p.add_argument("--new-key-file", metavar="FILE", help="key to encrypt it with")
    p.set_defaults(func=_run)

"""``tenantpulse keys create`` and ``tenantpulse audit verify``."""

from __future__ import annotations

import argparse
import secrets
import sys
from datetime import datetime
from pathlib import Path

from tenantpulse.kernel.errors import UsageError
from tenantpulse.security.keys import SCOPES, sha256_hex


def _create_key(args: argparse.Namespace) -> int:
    import yaml  # loaded by the commands that use it, not for --help

    scopes = [s for s in args.scopes.split(",") if s]
    if not scopes or not set(scopes) <= SCOPES:
        raise UsageError(f"--scopes must be a comma-separated list of {sorted(SCOPES)}")
    if args.expires:
        try:
            datetime.fromisoformat(args.expires.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError("--expires must be an ISO 8601 time, e.g. 2027-01-01T00:00:00Z") from None
    key = "tp_" + secrets.token_urlsafe(32)
    entry: dict[str, object] = {
        "id": args.id or sha256_hex(key)[:12],
        "key_sha256": sha256_hex(key),
        "tenant": args.tenant,
        "scopes": scopes,
    }
    if args.expires:
        entry["expires"] = args.expires
    print(f"# key (shown once; give it to the client): {key}", file=sys.stderr)
    print(key)
    print("# line for the keys file:", file=sys.stderr)
    print("  - " + yaml.safe_dump(entry, default_flow_style=True, sort_keys=False, width=1000).strip())
    return 0


def _state_key(args: argparse.Namespace) -> int:
    from tenantpulse.security.state_crypto import new_key_hex  # cryptography

    print(new_key_hex())
    return 0


def _verify(args: argparse.Namespace) -> int:
    from tenantpulse.security import audit

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no such audit log: {path}")
    count, finding = audit.verify(path)
    if finding is None:
        print(f"ok: {count} entries, chain intact")
        return 0
    if finding.kind == "torn":  # not tampering: the server sets such a line aside at its next start
        print(f"TORN: {finding.message}; the {count} entries before it are intact")
        return 3
    print(f"TAMPERED: {finding.message} ({count} entries verified before it)")
    return 1


def register(root: argparse._SubParsersAction, generate: argparse._SubParsersAction) -> None:
    keys = root.add_parser("keys", help="create API keys and state encryption keys")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    ksub.required = True
    create = ksub.add_parser(
        "create", help="make a new API key; prints the key and its hashed keys-file line"
    )
    create.add_argument("--tenant", required=True, help="tenant id the key is bound to, or '*' for all")
    create.add_argument("--scopes", default="read,write", help="comma-separated: read, write, admin")
    create.add_argument("--id", help="key id shown in logs and the audit trail (default: hash prefix)")
    create.add_argument("--expires", help="ISO 8601 expiry time")
    create.set_defaults(func=_create_key)
    state = ksub.add_parser(
        "state-key", help="print a new random AES-256 key (hex) for encrypted sidecar state"
    )
    state.set_defaults(func=_state_key)

    aud = root.add_parser("audit", help="check the audit trail")
    asub = aud.add_subparsers(dest="audit_command", metavar="ACTION")
    asub.required = True
    verify = asub.add_parser(
        "verify",
        help="check the hash chain; names the first altered/removed/inserted entry",
        description="Exit 0: chain intact; 1: an entry altered, removed, inserted or unreadable; "
        "2: no such file; 3: only the last line is torn (a write cut short, e.g. by a full disk).",
    )
    verify.add_argument("file", help="audit log (JSON lines)")
    verify.set_defaults(func=_verify)

"""``web.errors.redact`` and ``named_field``: what an answer keeps of a message written for the CLI too."""

from __future__ import annotations

import pytest

from tenantpulse.web.errors import named_field, redact

SENT = {"condition": "error_rate[ECHO-1] > 5", "summary": "{{ ECHO-2 }}", "ECHO-key": 1, "colour": "a\nb"}


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("unknown indicator 'ECHO-1'; valid: error_rate", "unknown indicator '...'; valid: error_rate"),
        ("cannot parse 'error_rate[ECHO-1] > 5'", "cannot parse '...'"),
        ("bad window [ECHO-1] on error_rate", "bad window [...] on error_rate"),
        (
            "unsupported template {{ ECHO-2 }}; valid: {{ $value }}",
            "unsupported template {{...}}; valid: {{ $value }}",
        ),
        (
            "invalid tenant id(s) ['ECHO-1', 'ECHO-2']: must match",
            "invalid tenant id(s) ['...', '...']: must match",
        ),
        ("unknown field 'ECHO-key'; valid: a", "unknown field '...'; valid: a"),
        ("unknown field 'colour'; valid: a", "unknown field 'colour'; valid: a"),  # a plain name: named
        ("got 'a\\nb'", "got '...'"),  # repr()'s escapes undone before comparing
        ("unbalanced '{{' in '{{ ECHO-2 }}'", "unbalanced '{{' in '...'"),  # no letter or digit: kept
        ("the spec's field can't be 'ECHO-1'", "the spec's field can't be '...'"),  # apostrophes
        ("from the spec file: alert 'Other'", "from the spec file: alert 'Other'"),  # not sent
    ],
)
def test_redact_replaces_only_what_was_sent(text: str, kept: str) -> None:
    assert redact(text, SENT) == kept


def test_redact_without_input_changes_nothing() -> None:
    assert redact("unknown indicator 'x'") == "unknown indicator 'x'"


@pytest.mark.parametrize(
    ("field", "named"),
    [
        ("components[3].indicator", "components[3].indicator"),
        ("components[3].ECHO-x", "components[3]"),
        ("labels.My Key.value", "labels"),
        ("ECHO-x", "body"),
        ("events[2].metadata.duration_ms", "events[2].metadata.duration_ms"),
    ],
)
def test_named_field_stops_at_a_key_that_is_not_a_plain_name(field: str, named: str) -> None:
    assert named_field(field) == named

"""Every subcommand and every option of ``tenantpulse`` has a help text, and none says its default twice."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from tenantpulse.cli import build_parser


def parsers(
    parser: argparse.ArgumentParser, path: str = "tenantpulse"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The root parser and every subcommand's, depth first, with the command line that reaches it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, f"{path} {name}")


def subcommands_without_help() -> Iterator[str]:
    for path, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                yield from (f"{path} {name}" for name in action.choices if name not in helped)


def option_helps() -> Iterator[tuple[str, str | None]]:
    """(``command --option``, its help as ``--help`` prints it) for every option and positional."""
    for path, parser in parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            name = f"{path} {'/'.join(action.option_strings) or action.dest}"
            yield name, formatter._expand_help(action) if action.help else None


def test_the_walk_reaches_every_command() -> None:
    paths = {path for path, _ in parsers(build_parser())}
    assert {
        "tenantpulse exporter",
        "tenantpulse demo",
        "tenantpulse keys create",
        "tenantpulse generate chart",
    } <= paths


def test_every_subcommand_has_a_help_text() -> None:
    assert not list(subcommands_without_help())


def test_every_option_has_a_help_text() -> None:
    assert [name for name, text in option_helps() if not text] == []


def test_no_help_text_says_its_default_twice() -> None:
    twice = [f"{name}: {text}" for name, text in option_helps() if text and text.count("(default") > 1]
    assert twice == []


@pytest.mark.parametrize(
    ("command", "option", "expected"),
    [
        ("exporter", "--rate-burst", "(default: two seconds of --rate-limit, at least 500)"),
        ("exporter", "--port", "(default: 9464)"),
        ("sidecar", "--interval", "(default: 15s)"),
        ("sidecar", "--shard-index", "(default: 0)"),
        ("demo", "--workdir", "(default: .demo)"),
    ],
)
def test_defaults_are_shown_once(command: str, option: str, expected: str) -> None:
    text = dict(option_helps())[f"tenantpulse {command} {option}"]
    assert text is not None and text.endswith(expected) and text.count("(default") == 1

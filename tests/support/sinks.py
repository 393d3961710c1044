"""Slack-webhook and SMTP sinks for tests (the reusable servers live in ``tenantpulse.demo.sinks``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tenantpulse.demo.sinks import MailSink, WebhookSink, html_body

__all__ = ["MailSink", "WebhookSink", "html_body", "mail_sink", "webhook_sink"]


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    with MailSink() as sink:
        yield sink

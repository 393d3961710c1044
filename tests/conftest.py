"""Fixtures shared by many test modules."""

pytest_plugins = ["tests.support.sinks"]  # webhook_sink, mail_sink: local Slack/webhook and SMTP servers

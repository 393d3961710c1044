"""Defaults the command line shows in ``--help``, kept apart from the generators (grafanalib) so that
parsing the command line loads none of them."""

from __future__ import annotations

DEFAULT_KEYS_DIR = "/etc/grafana/tenant-keys"  # where Grafana's container holds each tenant's read key

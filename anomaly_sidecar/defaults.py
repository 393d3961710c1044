"""Detector defaults the command line shows in ``--help``, kept apart from the detector (numpy, scipy)
so that parsing the command line loads neither."""

from __future__ import annotations

DEFAULT_WARMUP = 150  # samples before alarms (scores are computed from the second sample on)

"""Fixtures of the dashboard API integration tests: ``api_world`` (see api_seed.py) and the
shared ``seeded_gateway_db`` (tests/servers/seeded.py) for the seeded-history test."""

from __future__ import annotations

from api_seed import api_world
from servers.seeded import seeded_gateway_db

__all__ = ["api_world", "seeded_gateway_db"]

"""Exceptions of the central gateway (``shuxin.gateway``).

Exception tree::

    GatewayError                    root; every failure the gateway raises on purpose is one
    │                               of these (adapters translate library errors with
    │                               ``raise … from``)
    ├── StoreError                  the time-series store failed
    │   ├── StoreUnavailableError   it cannot take the write now (connection refused, timeout,
    │   │                           5xx, missing database, auth): retryable — spool and retry
    │   ├── StoreRejectedError      it refused the data itself (HTTP 400: bad line protocol,
    │   │                           field type conflict): retrying the same points cannot help
    │   └── StoreQueryError         a read failed (bad query, unsupported by this store)
    ├── SpoolError                  the on-disk spool cannot be opened or written: points that
    │                               could not reach the store are NOT safe; do not acknowledge
    ├── DedupeError                 the (topic, seq) ledger cannot be opened or written
    └── QuarantineError             the quarantine table cannot be opened or written

A contract rejection of a payload is not a gateway error: ``shuxin.contract.errors
.ContractError`` is caught by ingest and becomes a quarantine row. ``shuxin.gateway
.broker_config.BrokerConfigError`` (a ``ValueError``) predates this tree and stays outside it.

Messages never repeat a payload or a point's values: the data is health data about people.
This module must not import anything heavier than the standard library.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every deliberate gateway failure."""


class StoreError(GatewayError):
    """The time-series store failed."""


class StoreUnavailableError(StoreError):
    """The store cannot take the write now; the same points may succeed later."""


class StoreRejectedError(StoreError):
    """The store refused the points themselves; retrying them unchanged cannot succeed."""


class StoreQueryError(StoreError):
    """A read from the store failed."""


class SpoolError(GatewayError):
    """The on-disk spool cannot be opened or written."""


class DedupeError(GatewayError):
    """The (topic, seq) ledger cannot be opened or written."""


class QuarantineError(GatewayError):
    """The quarantine table cannot be opened or written."""

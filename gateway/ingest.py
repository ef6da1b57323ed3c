"""The ingest pipeline: (topic, payload bytes, receive time) → decode → dedupe → sinks.

For each received message, in batches:

1. **decode** with :func:`shuxin.contract.codec.decode`; a :class:`ContractError` becomes a
   quarantine row (topic, code, reason, structured errors, bounded payload copy, receive time);
2. **dedupe** session messages by ``(topic, seq)`` against the :class:`SeqLedger` (and within
   the batch); a duplicate is counted and touches no store;
3. **gate**: the :class:`ConsentGate` (when given) names the messages whose subject withdrew
   consent; they are **discarded** — acknowledged, counted by reason, stored nowhere, no copy
   kept (not even in quarantine);
4. **route** the rest to every :class:`MessageSink` in one call per batch (the time-series sink
   first; the SQL sink for sessions, lifecycle and events plugs in the same way);
5. **mark** the written and discarded ones in the ledger.

Each message ends with an :class:`Outcome`. ``WRITTEN``, ``DUPLICATE``, ``DISCARDED`` and
``QUARANTINED`` mean the message is durable (or deliberately kept aside or dropped) and may be
acknowledged to the broker;
``FAILED`` means it is not safe yet (the store *and* the spool, or the quarantine, could not
take it) and must not be acknowledged, so the broker delivers it again.

One bad message never stops ingest: :meth:`Ingest.handle_batch` contains every exception. When
a sink fails a batch with anything but "unavailable", the batch is retried one message at a
time and only the message that still fails is quarantined (``store_rejected`` or
``internal_error``, with a copy of the whole payload so it can be replayed). Sinks must
therefore be idempotent — they are upserts keyed by data from the message itself.

Pure apart from the injected ports: no MQTT, no clock (the caller gives the receive time),
no threads. Blocking: call it from a worker thread when the ports do I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol

from shuxin.contract.codec import Message, decode
from shuxin.contract.errors import ContractError
from shuxin.contract.messages import MAX_PAYLOAD_BYTES
from shuxin.contract.topics import Topic
from shuxin.gateway.dedupe import SeqLedger
from shuxin.gateway.errors import GatewayError, StoreRejectedError
from shuxin.gateway.quarantine import (
    DEFAULT_PAYLOAD_COPY_BYTES,
    QuarantineRecord,
    QuarantineStore,
    make_record,
)

log = logging.getLogger(__name__)

#: Quarantine code of a valid message that a store refused.
STORE_REJECTED: Final = "store_rejected"
#: Quarantine code of a valid message that made gateway code raise unexpectedly.
INTERNAL_ERROR: Final = "internal_error"
#: Discard reason of a message whose subject withdrew consent.
CONSENT_WITHDRAWN: Final = "consent_withdrawn"


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the transport delivered it: plain types only."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message that passed the contract, as the sinks receive it."""

    received: Received
    topic: Topic
    message: Message

    @property
    def seq(self) -> int | None:
        """The message's ``seq`` (session streams), or None (status messages)."""
        seq = getattr(self.message, "seq", None)
        return seq if isinstance(seq, int) else None


class Outcome(StrEnum):
    """What became of one received message."""

    WRITTEN = "written"
    DUPLICATE = "duplicate"
    DISCARDED = "discarded"
    QUARANTINED = "quarantined"
    FAILED = "failed"

    @property
    def acknowledge(self) -> bool:
        """True when the broker may forget the message."""
        return self is not Outcome.FAILED


class MessageSink(Protocol):
    """Takes valid, not-yet-seen messages and makes them durable, idempotently.

    Raise :class:`~shuxin.gateway.errors.GatewayError` (other than ``StoreRejectedError``)
    when the data cannot be made durable now — the batch is then retried later as a whole.
    Any other exception is taken to be about the messages themselves.
    """

    def accept(self, messages: Sequence[Accepted]) -> None:
        """Make ``messages`` durable or raise."""
        ...


class ConsentGate(Protocol):
    """Decides which valid messages must not be stored because consent was withdrawn.

    Raise :class:`~shuxin.gateway.errors.GatewayError` when it cannot decide now (the batch is
    then not acknowledged and comes again): a message is never stored on a guess.
    """

    def refused(self, messages: Sequence[Accepted]) -> Mapping[int, str]:
        """Positions in ``messages`` to discard, each with its reason code."""
        ...


@dataclass(slots=True)
class IngestCounters:
    """Lifetime counters of one :class:`Ingest` (exported to /metrics and station health)."""

    received: int = 0
    valid: int = 0
    duplicates: int = 0
    written: int = 0
    failed: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    discarded: dict[str, int] = field(default_factory=dict)
    ledger_errors: int = 0

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready snapshot."""
        return {
            "received": self.received,
            "valid": self.valid,
            "duplicates": self.duplicates,
            "written": self.written,
            "failed": self.failed,
            "quarantined": dict(self.quarantined),
            "discarded": dict(self.discarded),
            "ledger_errors": self.ledger_errors,
        }


class Ingest:
    """The pipeline. One instance per gateway process; not thread-safe (one writer calls it)."""

    def __init__(
        self,
        *,
        sinks: Sequence[MessageSink],
        ledger: SeqLedger,
        quarantine: QuarantineStore,
        gate: ConsentGate | None = None,
        payload_copy_bytes: int = DEFAULT_PAYLOAD_COPY_BYTES,
    ) -> None:
        self._sinks = tuple(sinks)
        self._gate = gate
        self._ledger = ledger
        self._quarantine = quarantine
        self._payload_copy_bytes = payload_copy_bytes
        self._logged_codes: set[str] = set()
        self.counters = IngestCounters()

    def handle(self, received: Received) -> Outcome:
        """Handle one message (see :meth:`handle_batch`)."""
        return self.handle_batch([received])[0]

    def handle_batch(self, batch: Sequence[Received]) -> list[Outcome]:
        """Handle ``batch`` in order; return one outcome per message. Never raises."""
        outcomes: list[Outcome | None] = [None] * len(batch)
        rejected: dict[int, QuarantineRecord] = {}
        fresh: dict[int, Accepted] = {}
        batch_keys: set[tuple[str, int]] = set()
        self.counters.received += len(batch)

        for index, received in enumerate(batch):
            accepted = self._decode(received, index, rejected)
            if accepted is None:
                continue
            self.counters.valid += 1
            key = (received.topic, accepted.seq) if accepted.seq is not None else None
            if key is not None and (key in batch_keys or self._seen(*key)):
                outcomes[index] = Outcome.DUPLICATE
                self.counters.duplicates += 1
                continue
            if key is not None:
                batch_keys.add(key)
            fresh[index] = accepted
        accepted_all = dict(fresh)

        for index, outcome in self._screen(fresh).items():
            outcomes[index] = outcome
            del fresh[index]
        for index, outcome in self._deliver(fresh, rejected).items():
            outcomes[index] = outcome
        done = (Outcome.WRITTEN, Outcome.DISCARDED)
        self._mark([accepted_all[i] for i, o in enumerate(outcomes) if o in done])
        for index, outcome in self._quarantine_all(rejected).items():
            outcomes[index] = outcome

        final = [o if o is not None else Outcome.FAILED for o in outcomes]
        self.counters.written += final.count(Outcome.WRITTEN)
        self.counters.failed += final.count(Outcome.FAILED)
        return final

    # --- steps ------------------------------------------------------------------------------------

    def _decode(
        self, received: Received, index: int, rejected: dict[int, QuarantineRecord]
    ) -> Accepted | None:
        try:
            topic, message = decode(received.topic, received.payload)
        except ContractError as exc:
            details = exc.as_dict()
            errors = details.get("errors")
            rejected[index] = self._record(
                received,
                code=exc.code,
                reason=exc.reason,
                errors=errors if isinstance(errors, list) else [],
            )
            return None
        except Exception as exc:  # decode promises ContractError only; contain a broken promise
            rejected[index] = self._record(
                received, code=INTERNAL_ERROR, reason=f"decoder raised {type(exc).__name__}"
            )
            return None
        return Accepted(received, topic, message)

    def _seen(self, topic: str, seq: int) -> bool:
        try:
            return self._ledger.seen(topic, seq)
        except Exception:
            # Without the ledger, write anyway: idempotent writes keep the stores correct.
            self.counters.ledger_errors += 1
            log.exception("dedupe ledger unreadable; writing without dedupe")
            return False

    def _screen(self, fresh: Mapping[int, Accepted]) -> dict[int, Outcome]:
        """Discard what the consent gate refuses; FAILED for all when it cannot decide."""
        if self._gate is None or not fresh:
            return {}
        positions = list(fresh)
        try:
            refused = self._gate.refused([fresh[i] for i in positions])
        except Exception as exc:
            if not isinstance(exc, GatewayError):
                log.exception("the consent gate raised on a batch of %d", len(fresh))
            else:
                log.warning("consent gate unavailable (%s): %d message(s) not acknowledged",
                            exc, len(fresh))  # fmt: skip
            return dict.fromkeys(fresh, Outcome.FAILED)
        outcomes: dict[int, Outcome] = {}
        for position, reason in refused.items():
            outcomes[positions[position]] = Outcome.DISCARDED
            if not self.counters.discarded.get(reason):
                # The reason only: no topic, no session, no subject.
                log.warning("discarding messages (%s); later ones are counted", reason)
            self.counters.discarded[reason] = self.counters.discarded.get(reason, 0) + 1
        return outcomes

    def _deliver(
        self, fresh: Mapping[int, Accepted], rejected: dict[int, QuarantineRecord]
    ) -> dict[int, Outcome]:
        if not fresh:
            return {}
        try:
            self._to_sinks(list(fresh.values()))
        except StoreRejectedError:
            pass  # isolate the offending message below
        except GatewayError as exc:
            log.warning("sinks unavailable (%s): %d message(s) not acknowledged", exc, len(fresh))
            return dict.fromkeys(fresh, Outcome.FAILED)
        except Exception:
            log.exception("a sink raised on a batch of %d; retrying one by one", len(fresh))
        else:
            return dict.fromkeys(fresh, Outcome.WRITTEN)

        outcomes: dict[int, Outcome] = {}
        for index, accepted in fresh.items():
            try:
                self._to_sinks([accepted])
            except StoreRejectedError as exc:
                rejected[index] = self._record(
                    accepted.received,
                    code=STORE_REJECTED,
                    reason=str(exc),
                    payload_limit=MAX_PAYLOAD_BYTES,
                )
            except GatewayError as exc:
                log.warning("sinks unavailable (%s): message not acknowledged", exc)
                outcomes[index] = Outcome.FAILED
            except Exception as exc:
                log.exception("a sink raised on one message; quarantining it")
                rejected[index] = self._record(
                    accepted.received,
                    code=INTERNAL_ERROR,
                    reason=f"sink raised {type(exc).__name__}",
                    payload_limit=MAX_PAYLOAD_BYTES,
                )
            else:
                outcomes[index] = Outcome.WRITTEN
        return outcomes

    def _to_sinks(self, messages: Sequence[Accepted]) -> None:
        for sink in self._sinks:
            sink.accept(messages)

    def _mark(self, written: Sequence[Accepted]) -> None:
        keys = [(a.received.topic, a.seq) for a in written if a.seq is not None]
        if not keys:
            return
        try:
            self._ledger.mark(keys)
        except Exception:
            # The data is durable; a redelivery will be re-written idempotently.
            self.counters.ledger_errors += 1
            log.exception("dedupe ledger not updated for %d message(s)", len(keys))

    def _quarantine_all(self, rejected: Mapping[int, QuarantineRecord]) -> dict[int, Outcome]:
        if not rejected:
            return {}
        try:
            self._quarantine.add(list(rejected.values()))
        except Exception:
            log.exception("quarantine unwritable: %d message(s) not acknowledged", len(rejected))
            return dict.fromkeys(rejected, Outcome.FAILED)
        for record in rejected.values():
            self.counters.quarantined[record.code] = (
                self.counters.quarantined.get(record.code, 0) + 1
            )
            if record.code not in self._logged_codes:
                self._logged_codes.add(record.code)
                # Code and reason only: neither repeats the payload. Later ones are counted.
                log.warning("quarantined a message (%s): %s", record.code, record.reason)
        return dict.fromkeys(rejected, Outcome.QUARANTINED)

    def _record(
        self,
        received: Received,
        *,
        code: str,
        reason: str,
        errors: Sequence[object] = (),
        payload_limit: int | None = None,
    ) -> QuarantineRecord:
        return make_record(
            received.topic,
            received.payload,
            received.received_at,
            code=code,
            reason=reason,
            errors=[e for e in errors if isinstance(e, Mapping)],
            payload_limit=payload_limit or self._payload_copy_bytes,
        )

"""The CDR (contract v1, docs/cdr.md) of one ingress call, from what the call recorded.

The fields, their kinds and the disconnect reasons are defined in :mod:`switch.contract`;
tests/test_contract.py checks that :meth:`CallRecord.as_dict` writes exactly those fields and
that every reason the engine gives is one of the contract's.

The times a record holds are the engine's ``now``: a monotonic clock in the running switch, so
durations and post-dial delays are differences on that clock (a wall-clock step during a call
cannot make one negative or add an hour to it). :meth:`CallRecord.as_dict` turns them into
wall-clock UTC by adding ``wall_offset`` (wall-clock minus monotonic, read once per record).

>>> iso(0.25)
'1970-01-01T00:00:00.250000Z'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from switch.contract import RTP_COUNTERS, RTP_ENCRYPTION, RTP_LEGS

__all__ = ["Attempt", "CallRecord", "iso"]


def iso(ts: float) -> str:
    """UTC RFC 3339 with microseconds and a Z, as the contract wants."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class Attempt:
    """One try of one vendor."""

    vendor: str
    start: float
    sip_code: int = 0
    first_answer: float | None = None  # first 18x or 2xx from the vendor

    def as_dict(self, wall_offset: float = 0.0) -> dict[str, Any]:
        """The attempt's part of the CDR; ``wall_offset`` turns its times into wall-clock.

        >>> Attempt("v1", 100.0, 200, 100.25).as_dict(1_000.0)["start_ts"]
        '1970-01-01T00:18:20.000000Z'
        """
        pdd = 0 if self.first_answer is None else round((self.first_answer - self.start) * 1000)
        return {"vendor": self.vendor, "start_ts": iso(self.start + wall_offset),
                "sip_code": self.sip_code, "pdd_ms": pdd}


@dataclass(slots=True)
class CallRecord:
    """What the CDR of an ingress call says, filled in as the call goes.

    >>> rec = CallRecord("sw1-b-1", "sw1", "c1@h", "155", "9004477", "4477", "acme",
    ...                  "127.0.0.1", 5071, start=10.0)
    >>> rec.end(11.5, 503, "no_route")
    >>> d = rec.as_dict()
    >>> d["duration_ms"], d["answer_ts"], d["vendor"], d["disconnect_reason"]
    (0, None, None, 'no_route')
    >>> rec.as_dict(wall_offset=1_800_000_000.0)["end_ts"]
    '2027-01-15T08:00:11.500000Z'
    """

    cdr_id: str
    switch_id: str
    call_id: str
    caller: str
    callee: str
    callee_e164: str
    customer: str
    src_ip: str
    src_port: int
    start: float
    answer: float | None = None
    end_ts: float | None = None
    first_answer: float | None = None
    sip_code: int = 0
    reason: str = ""   # a DisconnectReason value once the call has ended
    attempts: list[Attempt] = field(default_factory=list)
    codec: str | None = None
    rtp_encryption: int = 0  # the vendor leg's mode, the contract's top-level field
    customer_rtp_encryption: int = 0
    rtp: dict[str, dict[str, int]] | None = None  # per leg, the relay's counters

    def end(self, now: float, sip_code: int, reason: str) -> None:
        """Close the record (first call wins: a call ends once)."""
        if self.end_ts is None:
            self.end_ts = now
            self.sip_code = sip_code
            self.reason = reason

    def as_dict(self, wall_offset: float = 0.0) -> dict[str, Any]:
        """The contract v1 record, its times ``wall_offset`` seconds on from those recorded
        (the default 0 for records whose times are wall-clock already, as in tests)."""
        end = self.end_ts if self.end_ts is not None else self.start
        duration = 0 if self.answer is None else max(0, round((end - self.answer) * 1000))
        pdd = 0 if self.first_answer is None else round((self.first_answer - self.start) * 1000)
        zero = dict.fromkeys(RTP_COUNTERS, 0)
        return {
            "cdr_id": self.cdr_id,
            "switch_id": self.switch_id,
            "call_id": self.call_id,
            "caller": self.caller,
            "callee": self.callee,
            "callee_e164": self.callee_e164,
            "customer": self.customer,
            "vendor": self.attempts[-1].vendor if self.attempts else None,
            "src_ip": self.src_ip,
            "src_port": self.src_port,
            "start_ts": iso(self.start + wall_offset),
            "answer_ts": None if self.answer is None else iso(self.answer + wall_offset),
            "end_ts": iso(end + wall_offset),
            "duration_ms": duration,
            "pdd_ms": pdd,
            "sip_code": self.sip_code,
            "disconnect_reason": self.reason,
            "attempts": [a.as_dict(wall_offset) for a in self.attempts],
            "codec": self.codec,
            "rtp_encryption": self.rtp_encryption,
            # Zero when media is not relayed, or the relay could not be asked.
            "rtp": {leg: dict(zero, **(self.rtp or {}).get(leg, {}), **{RTP_ENCRYPTION: mode})
                    for leg, mode in zip(RTP_LEGS, (self.customer_rtp_encryption,
                                                    self.rtp_encryption), strict=True)},
        }

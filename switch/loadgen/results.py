"""Results: a customer's per-call results and summary, a vendor's counters.

>>> results = [CallResult("c1", "4420", status=200, outcome="completed", answered=True,
...                       duration=2.0, pdd=0.1),
...            CallResult("c2", "4421", status=486, outcome="rejected", pdd=0.05)]
>>> s = UacSummary.from_results("cust", results, elapsed=3.0, placing=0.5)
>>> s.placed, s.answered, s.by_code, s.by_outcome
(2, 1, {200: 1, 486: 1}, {'completed': 1, 'rejected': 1})
>>> s.text()
'cust: 2 calls placed at 2.0 calls/s (run 3.0 s), 1 answered (50.0%); final codes: 200 x1, \
486 x1; outcomes: completed 1, rejected 1; mean PDD 75 ms; mean duration 2.0 s.'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["OUTCOMES", "CallResult", "UacSummary", "UasStats"]

#: How a call can end, from the customer's side.
#: ``completed``: answered and hung up by us with a 2xx to the BYE; ``remote_bye``: answered and
#: hung up by the far side; ``bye_failed``: answered, our BYE got no 2xx (or no response in 32 s);
#: ``rejected``: a non-2xx final response we did not cause; ``cancelled``: we sent CANCEL and the
#: INVITE ended with 487 (or no final); ``timeout``: no response to the INVITE within 64*T1;
#: ``aborted``: still running when the run's hard limit hit.
OUTCOMES = ("completed", "remote_bye", "bye_failed", "rejected", "cancelled", "timeout",
            "aborted")


@dataclass
class CallResult:
    """One call as the customer saw it; ``status`` is the INVITE's final code (None if none)."""

    call_id: str
    number: str
    status: int | None = None
    outcome: str = "aborted"
    answered: bool = False
    duration: float = 0.0  #: seconds from the 200 to the BYE (ours or theirs)
    pdd: float | None = None  #: seconds from the first INVITE to the first 18x or final
    planned_duration: float = 0.0
    bye_status: int | None = None
    auth_attempts: int = 0


@dataclass
class UacSummary:
    """Counts over a customer endpoint's calls; ``by_code`` holds final codes only, so
    ``sum(by_code.values())`` plus the calls without a final (timeouts, some cancels) is
    ``placed``."""

    name: str
    placed: int = 0
    answered: int = 0
    by_code: dict[int, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    no_final: int = 0
    elapsed: float = 0.0
    placing: float = 0.0  #: seconds from the first INVITE to the last new call's INVITE
    mean_pdd: float | None = None
    mean_duration: float | None = None

    @classmethod
    def from_results(cls, name: str, results: Iterable[CallResult], elapsed: float,
                     placing: float = 0.0) -> UacSummary:
        """Summarize ``results``; ``placing`` gives the achieved call rate."""
        out = cls(name, elapsed=elapsed, placing=placing)
        pdds: list[float] = []
        durations: list[float] = []
        for r in results:
            out.placed += 1
            if r.answered:
                out.answered += 1
                durations.append(r.duration)
            if r.status is None:
                out.no_final += 1
            else:
                out.by_code[r.status] = out.by_code.get(r.status, 0) + 1
            out.by_outcome[r.outcome] = out.by_outcome.get(r.outcome, 0) + 1
            if r.pdd is not None:
                pdds.append(r.pdd)
        out.by_code = dict(sorted(out.by_code.items()))
        out.by_outcome = {k: out.by_outcome[k] for k in OUTCOMES if k in out.by_outcome}
        out.mean_pdd = sum(pdds) / len(pdds) if pdds else None
        out.mean_duration = sum(durations) / len(durations) if durations else None
        return out

    def text(self) -> str:
        """One paragraph for the end of a run."""
        rate = (self.placed - 1) / self.placing if self.placed > 1 and self.placing > 0 else 0.0
        share = 100.0 * self.answered / self.placed if self.placed else 0.0
        codes = ", ".join(f"{code} x{n}" for code, n in self.by_code.items()) or "none"
        if self.no_final:
            codes += f", no final x{self.no_final}"
        outcomes = ", ".join(f"{k} {n}" for k, n in self.by_outcome.items()) or "none"
        text = (f"{self.name}: {self.placed} calls placed at {rate:.1f} calls/s "
                f"(run {self.elapsed:.1f} s), {self.answered} answered ({share:.1f}%); "
                f"final codes: {codes}; outcomes: {outcomes}")
        if self.mean_pdd is not None:
            text += f"; mean PDD {self.mean_pdd * 1000:.0f} ms"
        if self.mean_duration is not None:
            text += f"; mean duration {self.mean_duration:.1f} s"
        return text + "."


@dataclass
class UasStats:
    """What a vendor endpoint saw and did.

    >>> UasStats("v1", invites=2, answered=1, refused={486: 1}).text()
    'v1: 2 INVITEs, 1 answered, refused 486 x1, 0 cancelled, 0 BYEs received.'
    """

    name: str = "vendor"
    invites: int = 0  #: new INVITEs that got a behaviour (not retransmissions, re-INVITEs)
    answered: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    cancelled: int = 0
    byes_received: int = 0
    behaviours: dict[str, int] = field(default_factory=dict)
    challenged: int = 0
    reinvites: int = 0
    options: int = 0
    invite_retransmissions: int = 0
    ack_timeouts: int = 0
    unknown_dialog: int = 0  #: requests answered 481

    def text(self) -> str:
        """One paragraph for the end of a run."""
        refused = ", ".join(f"{code} x{n}" for code, n in sorted(self.refused.items()))
        parts = [f"{self.invites} INVITEs", f"{self.answered} answered",
                 f"refused {refused}" if refused else "0 refused",
                 f"{self.cancelled} cancelled", f"{self.byes_received} BYEs received"]
        extras = [(self.challenged, "challenged (407)"), (self.reinvites, "re-INVITEs"),
                  (self.options, "OPTIONS"), (self.ack_timeouts, "ACK timeouts"),
                  (self.unknown_dialog, "answered 481")]
        parts += [f"{n} {what}" for n, what in extras if n]
        return f"{self.name}: {', '.join(parts)}."

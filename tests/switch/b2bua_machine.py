"""The model behind the B2BUA property tests: a hypothesis state machine and its invariants.

test_b2bua_properties.py runs it on random event sequences; test_b2bua_property_examples.py
drives it through the sequences that once found bugs.

The machine plays one customer (over UDP or TCP, with RFC 3261 branches or as an
RFC 2543 peer without them) and three vendors against the engine: new INVITEs (routed to 1-3
vendors, or to none; some with Max-Forwards 0, some over the customer's limits), CANCEL, ACK, BYE
from either side, re-INVITE, UPDATE and INFO in dialog, forked answers and merged requests,
vendor answers of every class to current and abandoned attempts, retransmissions and replays, a
configuration reload, a shutdown, and time moving on by 0 ms to minutes. Whatever the order,
these hold:

- every request the engine took (ACK aside) gets exactly one final answer: never none, never two
  different ones (retransmissions of the same answer are fine);
- every call the customer placed has exactly one CDR (a ``Finish``), whose ``sip_code`` is the
  final answer the customer got, whose fields keep the contract (docs/cdr.md);
- once every timer has fired, nothing of a call is left: no call, transaction, owner or timer,
  and the concurrency counts are back to 0;
- nothing raises, nothing answers 500, and everything sent survives serialize and parse.

Peers behave as RFC 3261 clients do in one respect: a request is retransmitted only while its
client transaction lives (64*T1 after it was first sent) and, an INVITE, until its sender sent
the ACK (or a BYE: it had the answer); any other request until its sender had a final answer.
Responses may be replayed at any time.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from switch.b2bua.build import Peer
from switch.contract import SNAPSHOT_FORMAT, SNAPSHOT_VERSION
from switch.sip import Request, Response, cseq, parse_message, tag, top_via, via_branch
from tests.switch.b2bua_harness import ANSWER_SDP, SDP, Harness, config, response_bytes

T1 = 0.5
#: A client transaction's lifetime (timer B/F): nobody retransmits a request after it.
WINDOW = 64 * T1

CONTRACT_REASONS = frozenset({
    "normal_clearing", "caller_bye", "callee_bye", "no_answer", "busy", "rejected", "no_route",
    "cps_limit", "concurrency_limit", "max_duration", "profit_limit", "auth_failed",
    "invite_timeout", "media_timeout", "shutdown", "error"})
ANSWERED_REASONS = frozenset({"normal_clearing", "caller_bye", "callee_bye", "max_duration",
                              "media_timeout", "shutdown", "error"})

VENDOR_PORTS = (5070, 5072, 5074)
CONFIG = """
[switch]
id = "sw1"
sip_listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]

[sip]
invite_timeout = 8
call_progress_timeout = 60

[[mapping_gateway]]
name = "acme"
addresses = ["127.0.0.1"]
cps_limit = 4
max_concurrent = 3
max_duration = 120

[[routing_gateway]]
name = "v1"
address = "127.0.0.1:5070"
prefixes = ["44", "1", "7"]
priority = 1
huntstop_codes = [486]

[[routing_gateway]]
name = "v2"
address = "127.0.0.1:5072"
prefixes = ["44", "1"]
priority = 2

[[routing_gateway]]
name = "v3"
address = "127.0.0.1:5074"
prefixes = ["44"]
priority = 3
"""
# What a SIGHUP may bring: v3 gone, v1 stopped after an INVITE timeout, tighter limits.
RELOADED = CONFIG.replace("call_progress_timeout = 60", """call_progress_timeout = 60
stop_gateway_after_invite_timeout = true
stop_gateway_period = 30""").replace("cps_limit = 4", "cps_limit = 2").replace(
    "max_duration = 120", "max_duration = 60").split("[[routing_gateway]]\nname = \"v3\"")[0]
# 44 goes to three vendors, 1 to two, 7 to one; 33 has a customer rate but no vendor, 99 none.
SNAPSHOT = {
    "format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, "rates_at": "2026-11-26T00:00:00Z",
    "customers": {"acme": {"44": "0.0300", "1": "0.0100", "7": "0.0200", "33": "0.0300"}},
    "vendors": {"v1": {"44": "0.0100", "1": "0.0050", "7": "0.0100"},
                "v2": {"44": "0.0150", "1": "0.0060"}, "v3": {"44": "0.0200"}},
}

# Indexes into the growing lists of calls, attempts and requests, counted from the newest
# (modulo the length): mostly one of the last few, what a peer is busy with, sometimes any.
INDEX = st.one_of(st.integers(0, 2), st.integers(0, 1 << 16))
PREFIX = st.sampled_from(["44", "44", "44", "1", "7", "33", "99"])
# Milliseconds: often nothing, often a retransmission interval, sometimes past every timer.
DELAY_MS = st.one_of(st.just(0), st.integers(1, 1_000), st.integers(1_000, 40_000),
                     st.integers(40_000, 300_000))


@dataclass
class Sent:
    """A request a peer sent to the switch, kept to retransmit it."""

    raw: bytes
    peer: Peer
    key: tuple[Peer, str, str, str]      # peer, Call-ID, branch, method
    at: float
    call: CustomerCall | None = None     # set on a customer's INVITE that opens a call


@dataclass
class CustomerCall:
    """One INVITE transaction of the customer that opens (or tries to open) a call."""

    call_id: str
    from_tag: str
    number: str
    peer: Peer
    branch: str
    rfc2543: bool = False       # Vias without a branch: transactions matched the old way
    invite_cseq: int = 1
    a_tag: str | None = None    # the switch's To tag, once an answer carried it
    done: bool = False          # ACK or BYE sent: the customer had its final answer
    cancelled: bool = False     # a CANCEL was sent (sending it again is a retransmission)

    @property
    def key(self) -> tuple[Peer, str, str, str]:
        branch = f"rfc2543-{self.invite_cseq}" if self.rfc2543 else f"z9hG4bK{self.branch}"
        return (self.peer, self.call_id, branch, "INVITE")

    def via(self, branch: str) -> str:
        sent_by = f"SIP/2.0/{self.peer[0].upper()} 127.0.0.1:5071"
        return sent_by if self.rfc2543 else f"{sent_by};branch=z9hG4bK{branch}"


@dataclass
class VendorLeg:
    """An INVITE the switch sent to a vendor (one attempt), as that vendor sees it."""

    invite: Request
    peer: Peer
    to_tag: str
    call: object   # the engine's call it was made for (identity only)
    cseq: int = 100


def _pick(items: list, i: int):
    """The ``i``-th item counted from the newest, wrapping around."""
    return items[-1 - i % len(items)]


def _key(msg: Request | Response, peer: Peer) -> tuple[Peer, str, str, str]:
    """Which transaction of ``peer`` a request or response is: Call-ID, branch (for an RFC 2543
    peer the CSeq number stands in) and method."""
    number, method = cseq(msg)
    branch = via_branch(top_via(msg) or "") or f"rfc2543-{number}"
    return (peer, msg.headers.get("call-id") or "", branch,
            msg.method if isinstance(msg, Request) else method)


def check_record(rec: dict) -> None:
    """The contract rules one CDR must keep on its own."""
    assert rec["disconnect_reason"] in CONTRACT_REASONS, rec
    answered = rec["answer_ts"] is not None
    assert answered == (rec["sip_code"] == 200), rec
    if answered:
        assert rec["disconnect_reason"] in ANSWERED_REASONS, rec
        assert rec["start_ts"] <= rec["answer_ts"] <= rec["end_ts"], rec
        assert rec["attempts"] and rec["attempts"][-1]["sip_code"] == 200, rec
    else:
        assert rec["duration_ms"] == 0, rec
        assert 300 <= rec["sip_code"] <= 699, rec
    assert rec["start_ts"] <= rec["end_ts"], rec
    assert rec["duration_ms"] >= 0 and rec["pdd_ms"] >= 0, rec
    assert rec["vendor"] == (rec["attempts"][-1]["vendor"] if rec["attempts"] else None), rec
    for attempt in rec["attempts"]:
        # An attempt that was tried has an outcome: its final code, 408 (no answer in time)
        # or 487 (cancelled by the switch or the customer).
        assert attempt["sip_code"] != 0, rec
        assert attempt["pdd_ms"] >= 0, rec


class B2buaMachine(RuleBasedStateMachine):
    """A customer and three vendors doing whatever they like, in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.h = Harness.make(config(base=CONFIG), SNAPSHOT)
        self.ids = itertools.count(1)
        self.calls: list[CustomerCall] = []
        self.sent: list[Sent] = []                  # requests to the switch
        self.replies: list[tuple[bytes, Peer]] = []  # responses to the switch
        self.legs: list[VendorLeg] = []
        self.requests: list[tuple[Request, Peer]] = []  # other requests from the switch
        self.seen_requests: set[tuple[str, str]] = set()
        self.finals: dict[tuple, set[int]] = defaultdict(set)
        self.checked = 0
        self.read = 0
        self.shut = False
        self.reloaded = False
        self.cseqs: dict[str, int] = {}

    # --- plumbing ---------------------------------------------------------------------------

    def _n(self) -> int:
        return next(self.ids)

    def _next_cseq(self, call_id: str) -> int:
        """The customer's next CSeq on ``call_id`` (one space per Call-ID, whichever INVITE
        of it the request goes with)."""
        self.cseqs[call_id] = self.cseqs.get(call_id, 1) + 1
        return self.cseqs[call_id]

    def _request(self, raw: str, body: bytes = b"", *, peer: Peer,
                 call: CustomerCall | None = None) -> None:
        data = raw.replace("\n", "\r\n").encode() + body
        req = parse_message(data)
        assert isinstance(req, Request)
        self.h.deliver(data, peer)
        self.sent.append(Sent(data, peer, _key(req, peer), self.h.now, call))
        self._read()

    def _reply(self, data: bytes, peer: Peer) -> None:
        before = len(self.h.sent)
        self.h.deliver(data, peer)
        self.replies.append((data, peer))
        self._read()
        call_id = parse_message(data).headers.get("call-id")
        for t in self.h.sent[before:]:
            if isinstance(t.message, Request) and t.message.method == "ACK":
                # An ACK answers a final response in that response's dialog, nowhere else.
                assert t.message.headers.get("call-id") == call_id, (call_id, t.message)

    def _current(self, leg: VendorLeg) -> bool:
        """Whether ``leg`` is its call's latest attempt (the one the call may go on with)."""
        return next(x for x in reversed(self.legs) if x.call is leg.call) is leg

    def _read(self) -> None:
        """Take in what the switch sent since last time."""
        for t in self.h.sent[self.read:]:
            msg = t.message
            if isinstance(msg, Response):
                assert msg.status != 500, f"the switch answered 500: {msg}"
                key = _key(msg, t.peer)
                if msg.status >= 200:
                    self.finals[key].add(msg.status)
                found = tag(msg.headers.get("to") or "")
                if found and key[3] == "INVITE":
                    for call in self.calls:
                        if call.key == key and call.a_tag is None:
                            call.a_tag = found
                continue
            if msg.method == "ACK":
                continue
            branch = via_branch(top_via(msg) or "") or ""
            if (branch, msg.method) in self.seen_requests:
                continue  # a retransmission
            self.seen_requests.add((branch, msg.method))
            if msg.method == "INVITE" and t.peer[2] in VENDOR_PORTS \
                    and tag(msg.headers.get("to") or "") is None:
                call = self.h.engine._calls_b.get(msg.headers.get("call-id") or "")
                self.legs.append(VendorLeg(msg, t.peer, f"v{self._n()}", call))
            else:
                self.requests.append((msg, t.peer))
        self.read = len(self.h.sent)

    def _retransmittable(self) -> list[Sent]:
        now = self.h.now
        out = []
        for sent in self.sent:
            if now - sent.at >= WINDOW:
                continue
            if sent.key[3] == "ACK":
                out.append(sent)
            elif sent.call is not None:
                if not sent.call.done:
                    out.append(sent)
            elif not self.finals.get(sent.key):
                out.append(sent)
        return out

    # --- the customer -------------------------------------------------------------------------

    @initialize(prefixes=st.lists(PREFIX, min_size=1, max_size=3))
    def start(self, prefixes: list[str]) -> None:
        """A call or three to begin with (rules are switched off at random per example, the
        INVITE rule too: this keeps every example about calls)."""
        for prefix in prefixes:
            self.invite(prefix, 0, False, 70)

    @rule(prefix=PREFIX, digits=st.integers(0, 10**9),
          tcp=st.sampled_from([False, False, False, True]),
          max_forwards=st.sampled_from([70] * 9 + [0]),
          rfc2543=st.sampled_from([False, False, False, True]))
    def invite(self, prefix: str, digits: int, tcp: bool, max_forwards: int,
               rfc2543: bool = False) -> None:
        n = self._n()
        peer = Peer("tcp" if tcp else "udp", "127.0.0.1", 5071)
        call = CustomerCall(f"c{n}", f"f{n}", f"{prefix}{digits}", peer, f"i{n}", rfc2543)
        self.calls.append(call)
        self._send_invite(call, max_forwards)

    def _send_invite(self, call: CustomerCall, max_forwards: int = 70) -> None:
        self._request(
            f"INVITE sip:{call.number}@127.0.0.1:5060 SIP/2.0\n"
            f"Via: {call.via(call.branch)}\n"
            f"Max-Forwards: {max_forwards}\n"
            f"From: <sip:15551234567@127.0.0.1>;tag={call.from_tag}\n"
            f"To: <sip:{call.number}@127.0.0.1>\nCall-ID: {call.call_id}\n"
            f"CSeq: {call.invite_cseq} INVITE\nContact: <sip:caller@127.0.0.1:5071>\n"
            f"Content-Type: application/sdp\nContent-Length: {len(SDP)}\n\n", SDP,
            peer=call.peer, call=call)

    @precondition(lambda self: self.calls)
    @rule(i=INDEX, same_cseq=st.booleans())
    def merged_invite(self, i: int, same_cseq: bool) -> None:
        """The same Call-ID and From tag on a new branch (a loop, a merge, or a retry)."""
        old = _pick(self.calls, i)
        # Without a branch, the same CSeq would make it the same transaction (17.2.3): a
        # retransmission, which only happens within the original's lifetime (see retransmit).
        cseq_number = old.invite_cseq if same_cseq and not old.rfc2543 \
            else self._next_cseq(old.call_id)
        call = CustomerCall(old.call_id, old.from_tag, old.number, old.peer, f"m{self._n()}",
                            old.rfc2543, cseq_number)
        self.calls.append(call)
        self._send_invite(call)

    @precondition(lambda self: self._retransmittable())
    @rule(i=INDEX)
    def retransmit(self, i: int) -> None:
        options = self._retransmittable()
        sent = _pick(options, i)
        self.h.deliver(sent.raw, sent.peer)
        self._read()

    @precondition(lambda self: self.replies)
    @rule(i=INDEX)
    def replay_response(self, i: int) -> None:
        data, peer = _pick(self.replies, i)
        self.h.deliver(data, peer)
        self._read()

    @precondition(lambda self: self.calls)
    @rule(i=INDEX)
    def customer_ack(self, i: int) -> None:
        call = _pick(self.calls, i)
        finals = self.finals.get(call.key)
        final = min(finals) if finals else None
        to = f"<sip:{call.number}@127.0.0.1>" + (f";tag={call.a_tag}" if call.a_tag else "")
        if final is not None and final >= 300:  # part of the INVITE transaction (17.1.1.3)
            branch, uri = call.branch, f"sip:{call.number}@127.0.0.1:5060"
        else:                                   # a transaction of its own (13.2.2.4)
            branch, uri = f"k{self._n()}", "sip:sw1@127.0.0.1:5060"
        if final is not None:
            call.done = True
        self._request(
            f"ACK {uri} SIP/2.0\n"
            f"Via: {call.via(branch)}\n"
            f"Max-Forwards: 70\nFrom: <sip:15551234567@127.0.0.1>;tag={call.from_tag}\n"
            f"To: {to}\nCall-ID: {call.call_id}\nCSeq: {call.invite_cseq} ACK\n"
            f"Content-Length: 0\n\n", peer=call.peer)

    @precondition(lambda self: any(not call.cancelled for call in self.calls))
    @rule(i=INDEX)
    def customer_cancel(self, i: int) -> None:
        calls = [call for call in self.calls if not call.cancelled]
        call = _pick(calls, i)
        call.cancelled = True
        self._request(
            f"CANCEL sip:{call.number}@127.0.0.1:5060 SIP/2.0\n"
            f"Via: {call.via(call.branch)}\n"
            f"Max-Forwards: 70\nFrom: <sip:15551234567@127.0.0.1>;tag={call.from_tag}\n"
            f"To: <sip:{call.number}@127.0.0.1>\nCall-ID: {call.call_id}\n"
            f"CSeq: {call.invite_cseq} CANCEL\nContent-Length: 0\n\n", peer=call.peer)

    @precondition(lambda self: self.calls)
    @rule(i=INDEX, method=st.sampled_from(["BYE", "BYE", "INVITE", "UPDATE", "INFO"]))
    def customer_in_dialog(self, i: int, method: str) -> None:
        call = _pick(self.calls, i)
        cseq_number = self._next_cseq(call.call_id)
        if method == "BYE":
            call.done = True
        body = ANSWER_SDP if method in ("INVITE", "UPDATE") else b""
        self._request(
            f"{method} sip:sw1@127.0.0.1:5060 SIP/2.0\n"
            f"Via: {call.via(f'd{self._n()}')}\n"
            f"Max-Forwards: 70\nFrom: <sip:15551234567@127.0.0.1>;tag={call.from_tag}\n"
            f"To: <sip:{call.number}@127.0.0.1>;tag={call.a_tag or 'unknown'}\n"
            f"Call-ID: {call.call_id}\nCSeq: {cseq_number} {method}\n"
            f"Contact: <sip:caller@127.0.0.1:5071>\n"
            + ("Content-Type: application/sdp\n" if body else "")
            + f"Content-Length: {len(body)}\n\n", body, peer=call.peer)

    # --- the vendors ------------------------------------------------------------------------

    @precondition(lambda self: self.legs)
    @rule(i=INDEX, status=st.sampled_from([100, 180, 183, 200, 200, 200, 200, 302, 404, 408,
                                           480, 486, 487, 503, 600, 603]),
          fork=st.sampled_from([False, False, False, False, True]))
    def vendor_answer(self, i: int, status: int, fork: bool) -> None:
        """A vendor answers an attempt, the current one or an abandoned one."""
        leg = _pick(self.legs, i)
        body = ANSWER_SDP if status in (183, 200) else b""
        self._reply(response_bytes(leg.invite, status,
                                   to_tag=f"x{self._n()}" if fork else leg.to_tag,
                                   contact=f"<sip:vendor@127.0.0.1:{leg.peer[2]}>",
                                   body=body), leg.peer)

    @precondition(lambda self: self.legs)
    @rule(i=INDEX, method=st.sampled_from(["BYE", "BYE", "INVITE", "UPDATE", "INFO"]))
    def vendor_in_dialog(self, i: int, method: str) -> None:
        """A request from a vendor in the dialog of an attempt (answered or not, current or
        abandoned)."""
        leg = _pick(self.legs, i)
        leg.cseq += 1
        h = leg.invite.headers
        body = ANSWER_SDP if method in ("INVITE", "UPDATE") else b""
        sent, finished = len(self.h.sent), len(self.h.finished)
        self._request(
            f"{method} sip:sw1@127.0.0.1:5060 SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{leg.peer[2]};branch=z9hG4bKv{self._n()}\n"
            f"Max-Forwards: 70\nFrom: {h.get('to')};tag={leg.to_tag}\nTo: {h.get('from')}\n"
            f"Call-ID: {h.get('call-id')}\nCSeq: {leg.cseq} {method}\n"
            f"Contact: <sip:vendor@127.0.0.1:{leg.peer[2]}>\n"
            + ("Content-Type: application/sdp\n" if body else "")
            + f"Content-Length: {len(body)}\n\n", body, peer=leg.peer)
        if not self._current(leg):
            # An abandoned attempt's dialog is not the call's: it neither ends the call nor
            # reaches the customer.
            assert len(self.h.finished) == finished, "a stale vendor leg ended the call"
            assert not [t for t in self.h.sent[sent:] if t.peer[2] == 5071
                        and isinstance(t.message, Request)], "a stale vendor leg reached the caller"

    # --- either side answers what the switch asked -----------------------------------------

    @precondition(lambda self: self.requests)
    @rule(i=INDEX, pick=st.integers(0, 6))
    def answer_request(self, i: int, pick: int) -> None:
        """A BYE, CANCEL or relayed request from the switch gets an answer from its peer."""
        request, peer = _pick(self.requests, i)
        statuses = {"INVITE": (100, 180, 200, 200, 488, 491, 503),
                    "BYE": (200, 200, 200, 481, 408, 200, 200),
                    "CANCEL": (200, 200, 200, 481, 200, 200, 200)}.get(
            request.method, (100, 200, 200, 481, 488, 415, 200))
        status = statuses[pick]
        body = ANSWER_SDP if request.method == "INVITE" and status == 200 else b""
        self._reply(response_bytes(request, status, to_tag="p-tag",
                                   contact=f"<sip:peer@127.0.0.1:{peer[2]}>", body=body), peer)

    # --- time and the operator --------------------------------------------------------------

    @rule(ms=DELAY_MS)
    def advance(self, ms: int) -> None:
        self.h.advance(ms / 1000)
        self._read()

    @precondition(lambda self: not self.reloaded and len(self.sent) >= 4)
    @rule()
    def reload(self) -> None:
        """SIGHUP: a new configuration for new calls; calls in progress keep theirs."""
        self.reloaded = True
        self.h.engine.reload(config(base=RELOADED), self.h.engine.snapshot)

    @precondition(lambda self: not self.shut and len(self.sent) >= 8)
    @rule()
    def shutdown(self) -> None:
        """SIGTERM: refuse new calls, end the ones in progress."""
        self.shut = True
        self.h.engine.drain()
        self.h._take(self.h.engine.hangup_all(self.h.now))
        self._read()

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def records_keep_the_contract(self) -> None:
        finished = self.h.finished
        for finish in finished[self.checked:]:
            check_record(finish.record)
        ids = [f.record["cdr_id"] for f in finished]
        assert len(set(ids)) == len(ids), "a cdr_id was handed out twice"
        self.checked = len(finished)

    def teardown(self) -> None:
        h, engine = self.h, self.h.engine
        took = h.run_timers_out()
        self._read()
        # max_duration, the progress timeout after three invite timeouts, the CANCEL and relay
        # guards and the reaping: far less than this.
        assert took < 900, f"the last timer fired {took:.0f} s after the last event"
        self.records_keep_the_contract()

        assert not engine._calls_a and not engine._calls_b, "calls outlived their timers"
        assert len(engine.table) == 0, f"transactions left: {list(engine.table)}"
        assert not engine._owners
        assert engine.next_deadline() is None and engine.pending_timers == 0
        assert all(n == 0 for n in engine.limits.active.values()), engine.limits.active
        assert engine.active_calls == 0

        for sent in self.sent:
            if sent.key[3] == "ACK":
                continue
            got = self.finals.get(sent.key, set())
            assert len(got) == 1, f"{sent.key}: final answers {sorted(got)}"

        # One CDR per call the customer placed, saying what the customer was answered. A 482
        # (a merged request, 8.2.2.2) places no call.
        answered: dict[str, list[int]] = defaultdict(list)
        for key in {call.key for call in self.calls}:   # an RFC 2543 "merge" is a retransmission
            (status,) = self.finals[key]
            if status != 482:
                answered[key[1]].append(status)
        recorded: dict[str, list[int]] = defaultdict(list)
        for finish in h.finished:
            recorded[finish.record["call_id"]].append(finish.record["sip_code"])
        assert {k: sorted(v) for k, v in recorded.items()} == \
            {k: sorted(v) for k, v in answered.items()}

"""A harness for driving the sans-IO B2BUA engine with SIP text, without sockets or sleeping.

Not a test module; import it as ``from tests.switch.b2bua_harness import ...``. The customer
(A side) sends from 127.0.0.1:5071, vendors answer from their configured addresses; ``now`` is
a number the test moves forward.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from switch.b2bua import Engine, Finish, Ids, Peer, Transmit
from switch.b2bua.tu import MediaRequest
from switch.config import SwitchConfig, load_config_text
from switch.contract import SNAPSHOT_FORMAT, SNAPSHOT_VERSION
from switch.routing import parse_snapshot
from switch.sip import Request, Response, parse_message, serialize, tag

SNAPSHOT = {
    "format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, "rates_at": "2026-11-26T00:00:00Z",
    "customers": {"acme": {"44": "0.0300", "1": "0.0100"}, "zeta": {"44": "0.0300"}},
    "vendors": {"v1": {"44": "0.0100", "1": "0.0050"}, "v2": {"44": "0.0150"},
                "dear": {"44": "0.0295"}},
}

BASE_CONFIG = """
[switch]
id = "sw1"
sip_listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]

[sip]
invite_timeout = 8
call_progress_timeout = 60

[[mapping_gateway]]
name = "acme"
addresses = ["127.0.0.1"]
cps_limit = 100
max_concurrent = 50
max_duration = 3600

[[routing_gateway]]
name = "v1"
address = "127.0.0.1:5070"
prefixes = ["44", "1"]
priority = 1
huntstop_codes = [486]

[[routing_gateway]]
name = "v2"
address = "127.0.0.1:5072"
prefixes = ["44"]
priority = 2
"""

CUSTOMER = Peer("udp", "127.0.0.1", 5071)
SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
ANSWER_SDP = (b"v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
              b"m=audio 7000 RTP/AVP 8\r\n")


def config(extra: str = "", base: str = BASE_CONFIG) -> SwitchConfig:
    return load_config_text(base + extra)


def response_bytes(request: Request, status: int, *, to_tag: str | None = None,
                   contact: str | None = None, body: bytes = b"",
                   reason: str = "Whatever") -> bytes:
    """What a peer answers to ``request`` (a message the switch sent): its Vias, From, To (with
    ``to_tag`` added when the To has none and the status is not 100), Call-ID and CSeq."""
    h = request.headers
    to = h.get("to") or ""
    if to_tag is not None and status != 100 and tag(to) is None:
        to = f"{to};tag={to_tag}"
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in h.get_all("via")]
    lines += [f"From: {h.get('from')}", f"To: {to}", f"Call-ID: {h.get('call-id')}",
              f"CSeq: {h.get('cseq')}"]
    if contact is not None:
        lines.append(f"Contact: {contact}")
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    # Lone surrogates are the bytes that were not UTF-8 when the switch parsed them.
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


@dataclass
class Harness:
    """An engine plus what it sent, sorted by destination."""

    engine: Engine
    now: float = 1_800_000_000.0
    sent: list[Transmit] = field(default_factory=list)
    finished: list[Finish] = field(default_factory=list)
    media_requests: list[MediaRequest] = field(default_factory=list)  # not yet answered
    _n: itertools.count = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def make(cls, cfg: SwitchConfig | None = None, snapshot: dict | None = None, *,
             wall_offset: Callable[[], float] | None = None, media: bool = False) -> Harness:
        """An engine on the test config; without ``wall_offset`` ``now`` is wall-clock time
        (CDR times are ``now`` itself), with it ``now`` plays the monotonic clock."""
        ids = itertools.count(1)
        engine = Engine(cfg or config(), parse_snapshot(snapshot or SNAPSHOT),
                        local={"udp": Peer("udp", "127.0.0.1", 5060),
                               "tcp": Peer("tcp", "127.0.0.1", 5060)},
                        cdr_id=lambda: f"sw1-test-{next(ids)}", secret=b"k" * 32, ids=Ids("t"),
                        wall_offset=wall_offset, media=media)
        return cls(engine)

    # --- driving --------------------------------------------------------------------------------

    def _take(self, actions: list) -> list[Transmit]:
        out: list[Transmit] = []
        for action in actions:
            if isinstance(action, Finish):
                self.finished.append(action)
                out.extend(action.then)  # the shell sends these once the CDR is durable
            elif isinstance(action, MediaRequest):
                self.media_requests.append(action)  # answered by relay_answers()
            else:
                out.append(action)
        # Every message must survive the wire: serialize and parse it again.
        out = [Transmit(parse_message(serialize(t.message)), t.peer) for t in out]
        self.sent.extend(out)
        return out

    def feed(self, message: Request | Response | str, peer: tuple = CUSTOMER) -> list[Transmit]:
        if isinstance(message, str):
            message = parse_message(message.replace("\n", "\r\n").encode())
        return self._take(self.engine.receive(message, peer, self.now))

    def advance(self, seconds: float) -> list[Transmit]:
        self.now += seconds
        return self._take(self.engine.handle_timers(self.now))

    def deliver(self, raw: bytes, peer: tuple = CUSTOMER) -> list[Transmit]:
        """Feed ``raw`` from ``peer`` as the transport would: parsed first."""
        return self._take(self.engine.receive(parse_message(raw), peer, self.now))

    def relay_answers(self, reply: Callable[[MediaRequest], dict | None]) -> list[Transmit]:
        """Answer every pending media request, in order, with ``reply(request)`` (None: the
        relay failed); what the engine does then is sent as usual."""
        out: list[Transmit] = []
        for _ in range(1000):  # bounded: a reply may cause another request
            if not self.media_requests:
                return out
            request = self.media_requests.pop(0)
            out += self._take(self.engine.media_result(request.token, reply(request), self.now))
        raise AssertionError("media requests keep coming")

    def run_timers_out(self, max_rounds: int = 100_000) -> float:
        """With every peer silent, fire timers until none is left; return the time it took.

        Raises AssertionError when timers keep re-arming past ``max_rounds`` firings (a call
        that never lets go of its timers).
        """
        start = self.now
        for _ in range(max_rounds):
            deadline = self.engine.next_deadline()
            if deadline is None:
                return self.now - start
            self.now = max(self.now, deadline)
            self._take(self.engine.handle_timers(self.now))
        raise AssertionError(f"timers still armed after {max_rounds} rounds "
                             f"({self.now - start:.1f} s)")

    # --- the customer's side ----------------------------------------------------------------------

    def invite(self, number: str = "447700900123", *, call: str = "c1", branch: str = "a1",
               peer: tuple = CUSTOMER, cseq: int = 1, extra: str = "",
               body: bytes = SDP, max_forwards: int = 70) -> list[Transmit]:
        transport = peer[0].upper()
        head = (f"INVITE sip:{number}@127.0.0.1:5060 SIP/2.0\n"
                f"Via: SIP/2.0/{transport} {peer[1]}:{peer[2]};branch=z9hG4bK{branch}\n"
                f"Max-Forwards: {max_forwards}\n"
                f"From: <sip:15551234567@{peer[1]}>;tag=from-{call}\n"
                f"To: <sip:{number}@127.0.0.1>\nCall-ID: {call}\nCSeq: {cseq} INVITE\n"
                f"Contact: <sip:caller@{peer[1]}:{peer[2]}>\n{extra}"
                f"Content-Type: application/sdp\nContent-Length: {len(body)}\n\n")
        raw = head.replace("\n", "\r\n").encode() + body
        return self._take(self.engine.receive(parse_message(raw), peer, self.now))

    def from_customer(self, method: str, *, call: str = "c1", cseq: int = 2, branch: str = "",
                      to_tag: str | None = None, peer: tuple = CUSTOMER,
                      body: bytes = b"") -> list[Transmit]:
        """An in-dialog request (ACK, BYE, re-INVITE...) or a CANCEL from the customer."""
        to_tag = to_tag if to_tag is not None else self.a_tag(call)
        branch = branch or f"{method.lower()}{next(self._n)}"
        to = "<sip:447700900123@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
        head = (f"{method} sip:sw1@127.0.0.1:5060 SIP/2.0\n"
                f"Via: SIP/2.0/{peer[0].upper()} {peer[1]}:{peer[2]};branch=z9hG4bK{branch}\n"
                f"Max-Forwards: 70\nFrom: <sip:15551234567@{peer[1]}>;tag=from-{call}\n"
                f"To: {to}\nCall-ID: {call}\nCSeq: {cseq} {method}\n"
                + ("Content-Type: application/sdp\n" if body else "")
                + f"Content-Length: {len(body)}\n\n")
        raw = head.replace("\n", "\r\n").encode() + body
        return self._take(self.engine.receive(parse_message(raw), peer, self.now))

    def a_tag(self, call: str = "c1") -> str | None:
        """Our To tag towards the customer, from what we sent on that call."""
        for t in self.sent:
            if isinstance(t.message, Response) and t.message.headers.get("call-id") == call:
                found = tag(t.message.headers.get("to") or "")
                if found:
                    return found
        return None

    # --- the vendors' side ------------------------------------------------------------------------

    def requests_to(self, port: int, method: str = "INVITE") -> list[Request]:
        """Requests sent to ``port``, retransmissions left out (one per Via branch)."""
        found: dict[str, Request] = {}
        for t in self.sent:
            if t.peer[2] == port and isinstance(t.message, Request) \
                    and t.message.method == method:
                found.setdefault(t.message.headers.get("via") or "", t.message)
        return list(found.values())

    def responses_to(self, peer: tuple = CUSTOMER, call: str = "c1") -> list[int]:
        return [t.message.status for t in self.sent if t.peer == peer
                and isinstance(t.message, Response) and t.message.headers.get("call-id") == call]

    def vendor_reply(self, request: Request, status: int, *, port: int = 5070,
                     body: bytes = b"", to_tag: str = "v-tag") -> list[Transmit]:
        h = request.headers
        lines = [f"SIP/2.0 {status} Whatever"]
        lines += [f"Via: {v}" for v in h.get_all("via")]
        to = h.get("to") or ""
        lines += [f"From: {h.get('from')}", f"To: {to}" + ("" if tag(to) or status == 100
                                                          else f";tag={to_tag}"),
                  f"Call-ID: {h.get('call-id')}", f"CSeq: {h.get('cseq')}",
                  f"Contact: <sip:vendor@127.0.0.1:{port}>"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        return self._take(self.engine.receive(parse_message(raw), ("udp", "127.0.0.1", port),
                                              self.now))

    def vendor_request(self, method: str, invite: Request, *, port: int = 5070,
                       to_tag: str = "v-tag", cseq: int = 1, body: bytes = b"") -> list[Transmit]:
        """A request from the vendor inside the dialog our ``invite`` created."""
        h = invite.headers
        raw = (f"{method} sip:sw1@127.0.0.1:5060 SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKv{method}{next(self._n)}\r\n"
               f"Max-Forwards: 70\r\nFrom: {h.get('to')};tag={to_tag}\r\nTo: {h.get('from')}\r\n"
               f"Call-ID: {h.get('call-id')}\r\nCSeq: {cseq} {method}\r\n"
               + ("Content-Type: application/sdp\r\n" if body else "")
               + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        return self._take(self.engine.receive(parse_message(raw), ("udp", "127.0.0.1", port),
                                              self.now))

    def answer_call(self, port: int = 5070) -> Request:
        """Vendor rings and answers the latest INVITE sent to ``port``; the customer ACKs."""
        invite = self.requests_to(port)[-1]
        self.advance(0.5)
        self.vendor_reply(invite, 180, port=port)
        self.advance(1.5)
        self.vendor_reply(invite, 200, port=port, body=ANSWER_SDP)
        self.from_customer("ACK", cseq=1)
        return invite

    def cdr(self, index: int = -1) -> dict:
        return self.finished[index].record

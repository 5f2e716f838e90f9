"""The call's media on a relay, sans-IO: offer, answer, delete and the media-timeout check.

With relays (``Engine(media=True)``), each call with an SDP offer gets a session on a relay,
driven by rtpengine's ng commands (docs/media-ng.md): the customer's offer goes to the relay
before the first vendor attempt and the vendors get the relay's SDP; a vendor's answer SDP (18x
or 2xx) goes to the relay before it reaches the customer; at the end the session is deleted and
its counters go into the CDR (``rtp``); while the call is answered the relay is asked now and
then when media last flowed, and a call silent for ``[media] media_timeout`` seconds is ended
(BYE both legs, ``media_timeout``).

The engine does no I/O: it emits :class:`MediaRequest` actions, and the shell answers each with
:meth:`~switch.b2bua.engine.Engine.media_result` (the reply dictionary, or None when the relay
failed or did not answer in time). Requests of one call are carried out in order. What the
engine does with a reply is the continuation it kept under the request's token.

A re-INVITE or UPDATE with SDP from either side of an answered call is a re-offer from that
party's tag (the relay keeps the ports and follows a moved address), and its answer goes to the
relay before it is passed back (:func:`reoffer`, :func:`reanswer`).

A relay failure never leaves a call hanging: a failed offer fails the call with 503 (reason
``error``); a failed answer for a 2xx ends the vendor leg and fails the call the same way (a
failed 18x is not relayed); a failed re-offer is answered 488 and the call goes on; a failed
delete writes the CDR with zero counters; a failed check keeps the call and asks again later.
An SDP in an ACK (the answer to an offer in a 200) is not passed on (the switch generates the
ACKs of relayed re-INVITEs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from switch.b2bua.build import respond
from switch.b2bua.call import Call, CallState, CallTimer, MediaState, Side
from switch.b2bua.tu import Action, Finish, MediaRequest, MediaStep, Transmit
from switch.config import MappingGateway, RoutingGateway, encryption_of
from switch.contract import RTP_LEGS
from switch.media.ng import ENCRYPTION_OPTION, encryption_option
from switch.sip import Request, Response, ServerTransaction, tag

if TYPE_CHECKING:
    from switch.b2bua.engine import Engine

__all__ = ["answer", "answered_call", "check_interval", "counters", "finish", "last_packet",
           "media_check", "reanswer", "reoffer", "start"]

Reply = Mapping[str, object] | None
Continuation = Callable[[Reply, float, list[Action]], None]


def check_interval(media_timeout: float) -> float:
    """How often an answered call's relay is asked when media last flowed.

    >>> check_interval(60.0), check_interval(2.0), check_interval(3600.0)
    (15.0, 0.5, 15.0)
    """
    return min(15.0, max(0.5, media_timeout / 4))


def _text(value: str) -> str:
    r"""A SIP identifier as ng text: bytes that were not UTF-8 (kept as surrogates by the
    parser) become ``\xHH``, so the bencoded request can be encoded.

    >>> _text("c1\udcff@h")
    'c1\\xff@h'
    """
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _call_id(call: Call) -> str:
    return _text(call.a.call_id)


def _ask(engine: Engine, call: Call, step: MediaStep, command: dict[str, object],
         then: Continuation, out: list[Action]) -> None:
    token = engine.media_token()
    engine.media_pending[token] = then
    out.append(MediaRequest(token, _call_id(call), step, command))


def _a_tag(call: Call) -> str:
    return _text(tag(call.a.remote_party) or "")


def _b_tag(call: Call) -> str:
    return _text(tag(call.b.remote_party) or "") if call.b is not None else ""


def _sdp_command(engine: Engine, call: Call, step: MediaStep, sdp: bytes,
                 gateway: MappingGateway | RoutingGateway) -> dict[str, object]:
    command: dict[str, object] = {"command": str(step), "call-id": _call_id(call),
                                  "from-tag": _a_tag(call),
                                  "sdp": sdp.decode("utf-8", "replace"),
                                  "flags": ["strict source"]}  # ours always is; rtpengine not
    mode, key = encryption_of(engine.config, gateway)
    if mode:
        command[ENCRYPTION_OPTION] = encryption_option(mode, key)
    if step is MediaStep.ANSWER:
        call.rec.rtp_encryption = mode  # the CDR's field is the vendor leg's (docs/cdr.md)
    elif step is MediaStep.OFFER:
        call.rec.customer_rtp_encryption = mode
    return command


def start(engine: Engine, call: Call, now: float, out: list[Action],
          route: Callable[[float, list[Action]], None]) -> None:
    """A new call: offer its SDP to a relay, then ``route`` it (the first vendor attempt)."""
    if not engine.media or not call.offer:
        route(now, out)
        return
    call.media = MediaState.OFFERING

    def offered(reply: Reply, now: float, out: list[Action]) -> None:
        sdp = reply.get("sdp") if reply is not None else None
        if call.state is not CallState.ROUTING:
            return  # cancelled meanwhile: the end of the call deletes the session
        if not isinstance(sdp, str):
            engine.stats["media_error"] += 1
            engine._fail_call(call, 503, "error", now, out)
            return
        call.media = MediaState.ACTIVE
        call.offer = sdp.encode("utf-8")
        route(now, out)

    _ask(engine, call, MediaStep.OFFER,
         _sdp_command(engine, call, MediaStep.OFFER, call.offer, call.gateway), offered, out)


def answer(engine: Engine, call: Call, resp: Response, now: float, out: list[Action],
           then: Callable[[Response, float, list[Action]], None]) -> None:
    """A vendor's 18x or 2xx: give its SDP to the relay, then ``then`` with the relay's SDP."""
    if call.media is not MediaState.ACTIVE or not resp.body or call.b_vendor is None:
        then(resp, now, out)
        return
    attempt, status = call.attempt, resp.status
    command = _sdp_command(engine, call, MediaStep.ANSWER, resp.body, call.b_vendor)
    command["to-tag"] = _b_tag(call)

    def answered(reply: Reply, now: float, out: list[Action]) -> None:
        sdp = reply.get("sdp") if reply is not None else None
        current = call.state is CallState.ROUTING and call.attempt is attempt
        if isinstance(sdp, str) and current:
            then(Response(resp.status, resp.reason, resp.headers, sdp.encode("utf-8")),
                 now, out)
            return
        if status < 200:
            if not isinstance(sdp, str):
                engine.stats["media_error"] += 1
            return  # not relayed: its SDP is useless (or the attempt is over)
        # A 2xx we ACKed: the vendor's leg is up, and must come down.
        if call.b is not None:
            engine._send_bye(call.b, call, now, out)
        if not isinstance(sdp, str):
            engine.stats["media_error"] += 1
            engine._fail_call(call, 503, "error", now, out)

    _ask(engine, call, MediaStep.ANSWER, command, answered, out)


def reoffer(engine: Engine, call: Call, side: Side, req: Request, tx: ServerTransaction,
            now: float, out: list[Action],
            relay: Callable[[bytes, float, list[Action]], None]) -> None:
    """A re-INVITE or UPDATE from ``side`` of an answered call: its SDP goes to the relay (an
    offer from that party's tag; the ports stay, the addresses may move), then ``relay`` passes
    the request on with the relay's SDP. A relay failure answers it 488 (the call goes on)."""
    if call.media is not MediaState.ACTIVE or not req.body:
        relay(req.body, now, out)
        return
    mine, theirs = (_a_tag(call), _b_tag(call)) if side is Side.A else (_b_tag(call), _a_tag(call))
    # No encryption option: absent, the relay keeps the party's (a re-offer cannot downgrade it).
    command: dict[str, object] = {"command": "offer", "call-id": _call_id(call),
                                  "from-tag": mine, "to-tag": theirs,
                                  "sdp": req.body.decode("utf-8", "replace"),
                                  "flags": ["strict source"]}

    def offered(reply: Reply, now: float, out: list[Action]) -> None:
        sdp = reply.get("sdp") if reply is not None else None
        if call.state is not CallState.ANSWERED or tx.terminated:
            return
        if not isinstance(sdp, str):
            engine.stats["media_error"] += 1
            engine._reply(tx, respond(req, 488, None), now, out)
            return
        relay(sdp.encode("utf-8"), now, out)

    _ask(engine, call, MediaStep.OFFER, command, offered, out)


def reanswer(engine: Engine, call: Call, offer_from_b: bool, resp: Response, now: float,
             out: list[Action], then: Callable[[Response, float, list[Action]], None]) -> None:
    """The answer to a relayed re-offer: its SDP goes to the relay, then ``then`` with the
    relay's SDP. ``offer_from_b``: the vendor made the offer (the answer is the customer's).
    A relay failure passes the answer on unchanged (the request was answered; failing it now
    would leave the far end in a state the near end never saw)."""
    if call.media is not MediaState.ACTIVE or not resp.body:
        then(resp, now, out)
        return
    offerer, answerer = (_b_tag(call), _a_tag(call)) if offer_from_b else (_a_tag(call),
                                                                           _b_tag(call))
    command: dict[str, object] = {"command": "answer", "call-id": _call_id(call),
                                  "from-tag": offerer, "to-tag": answerer,
                                  "sdp": resp.body.decode("utf-8", "replace"),
                                  "flags": ["strict source"]}

    def answered(reply: Reply, now: float, out: list[Action]) -> None:
        sdp = reply.get("sdp") if reply is not None else None
        if not isinstance(sdp, str):
            engine.stats["media_error"] += 1
            then(resp, now, out)
            return
        then(Response(resp.status, resp.reason, resp.headers, sdp.encode("utf-8")), now, out)

    _ask(engine, call, MediaStep.ANSWER, command, answered, out)


def answered_call(engine: Engine, call: Call, now: float) -> None:
    """The call is answered: start watching its media (``media_timeout``)."""
    if call.media is MediaState.ACTIVE and engine.config.media.media_timeout > 0:
        engine._arm(call, CallTimer.MEDIA_CHECK,
                    now + check_interval(engine.config.media.media_timeout))


def finish(engine: Engine, call: Call, out: list[Action], then: list[Transmit]) -> bool:
    """The call is over: delete its session and write the CDR with the counters once the relay
    answered (True), or False when it has no session (the caller writes the CDR)."""
    if call.media not in (MediaState.OFFERING, MediaState.ACTIVE):
        return False
    call.media = MediaState.DELETED
    a_tag = _a_tag(call)

    def deleted(reply: Reply, now: float, out: list[Action]) -> None:
        if reply is not None:
            call.rec.rtp = counters(reply, a_tag, _b_tag(call))
        out.append(Finish(call.rec.as_dict(engine._wall_offset()), then))

    _ask(engine, call, MediaStep.DELETE,
         {"command": "delete", "call-id": _call_id(call), "from-tag": a_tag}, deleted, out)
    return True


def media_check(engine: Engine, call: Call, now: float, out: list[Action]) -> None:
    """Timer: ask the relay when media last flowed; end a call silent for media_timeout."""
    if call.state is not CallState.ANSWERED or call.media is not MediaState.ACTIVE:
        return
    timeout = engine.config.media.media_timeout

    def checked(reply: Reply, now: float, out: list[Action]) -> None:
        if call.state is not CallState.ANSWERED or call.media is not MediaState.ACTIVE:
            return
        latest = last_packet(reply) if reply is not None else None
        wall_now = now + engine._wall_offset()
        answered_for = now - (call.rec.answer if call.rec.answer is not None else now)
        if latest is not None and wall_now - latest >= timeout and answered_for >= timeout:
            engine.stats["media_timeout"] += 1
            engine._end_by_switch(call, "media_timeout", now, out)
            return
        if reply is None:
            engine.stats["media_check_failed"] += 1  # the relay's trouble is not the call's
        engine._arm(call, CallTimer.MEDIA_CHECK, now + check_interval(timeout))

    _ask(engine, call, MediaStep.QUERY,
         {"command": "query", "call-id": _call_id(call), "from-tag": _a_tag(call)},
         checked, out)


# --- reading the relay's statistics (our relay's and rtpengine's shapes) --------------------


def _rtp_streams(party: object) -> list[Mapping[str, object]]:
    out: list[Mapping[str, object]] = []
    medias = party.get("medias") if isinstance(party, Mapping) else None
    for media in medias if isinstance(medias, list) else []:
        streams = media.get("streams") if isinstance(media, Mapping) else None
        for stream in streams if isinstance(streams, list) else []:
            flags = stream.get("flags") if isinstance(stream, Mapping) else None
            if isinstance(stream, Mapping) and not (isinstance(flags, list) and "RTCP" in flags):
                out.append(stream)
    return out


def _number(d: object, *keys: str) -> int:
    for key in keys:
        d = d.get(key) if isinstance(d, Mapping) else None
    return d if isinstance(d, int) and not isinstance(d, bool) else 0


def _party(reply: Mapping[str, object], party_tag: str) -> object:
    tags = reply.get("tags")
    return tags.get(party_tag) if isinstance(tags, Mapping) and party_tag else None


def counters(reply: Mapping[str, object], a_tag: str, b_tag: str) -> dict[str, dict[str, int]]:
    """The CDR's ``rtp`` from a ``delete``/``query`` reply: per leg, packets and bytes in
    (from that party) and out (to it). Our relay counts what it sent (``ratelab-sent``);
    rtpengine does not, so there what came in from the other party stands for it.

    >>> stream = {"flags": ["RTP"], "stats": {"packets": 5, "bytes": 860},
    ...           "ratelab-sent": {"packets": 4, "bytes": 688}}
    >>> reply = {"tags": {"a1": {"medias": [{"streams": [stream]}]}}}
    >>> counters(reply, "a1", "b1")["customer"]
    {'packets_in': 5, 'packets_out': 4, 'bytes_in': 860, 'bytes_out': 688}
    """
    sides = {}
    for leg, mine, other in zip(RTP_LEGS, (a_tag, b_tag), (b_tag, a_tag), strict=True):
        ours, theirs = _rtp_streams(_party(reply, mine)), _rtp_streams(_party(reply, other))
        sent = [s for s in ours if isinstance(s.get("ratelab-sent"), Mapping)]
        sides[leg] = {
            "packets_in": sum(_number(s, "stats", "packets") for s in ours),
            "packets_out": sum(_number(s, "ratelab-sent", "packets") for s in sent) if sent
            else sum(_number(s, "stats", "packets") for s in theirs),
            "bytes_in": sum(_number(s, "stats", "bytes") for s in ours),
            "bytes_out": sum(_number(s, "ratelab-sent", "bytes") for s in sent) if sent
            else sum(_number(s, "stats", "bytes") for s in theirs),
        }
    return sides


def last_packet(reply: Mapping[str, object]) -> int | None:
    """The latest ``last packet`` (UNIX seconds) over every RTP stream of a ``query`` reply.

    >>> last_packet({"tags": {"a": {"medias": [{"streams": [{"last packet": 7},
    ...                                                     {"last packet": 9}]}]}}})
    9
    """
    tags = reply.get("tags")
    times = [_number(s, "last packet") for party in
             (tags.values() if isinstance(tags, Mapping) else ())
             for s in _rtp_streams(party)]
    return max(times, default=None)

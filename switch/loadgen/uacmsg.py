"""A customer call's state and the requests it sends: INVITE, CANCEL, both ACKs, BYE.

Pure builders over a small per-call record (:class:`CallLeg`); the UAC owns sockets and timers
and keeps the rest of a live call in :class:`Call`.

>>> leg = CallLeg("c1", "ft", "sip:4420@127.0.0.1:5060", ("127.0.0.1", 5070), caller="alice")
>>> req = invite(leg, b"")
>>> req.method, req.headers.get("cseq"), req.headers.get("from")
('INVITE', '1 INVITE', '<sip:alice@127.0.0.1:5070>;tag=ft')
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from switch.loadgen.common import Address, Retransmitter, new_token
from switch.loadgen.results import CallResult
from switch.sip import (
    Challenge,
    DigestError,
    Headers,
    Request,
    Response,
    authorization,
    split_values,
    tag,
)

__all__ = [
    "Call", "CallLeg", "ack_for_2xx", "ack_for_failure", "bye", "cancel", "credentials", "invite",
    "learn_dialog",
]

_ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"


@dataclass
class CallLeg:
    """The dialog state a UAC needs to build its requests."""

    call_id: str
    from_tag: str
    uri: str
    local: Address
    caller: str = "loadgen"
    cseq: int = 1
    branch: str = ""
    to_tag: str | None = None
    remote_target: str | None = None
    route: list[str] = field(default_factory=list)
    auth: tuple[str, str] | None = None  # (header name, value) for the next INVITE

    def via(self, branch: str) -> str:
        host, port = self.local
        return f"SIP/2.0/UDP {host}:{port};branch={branch};rport"

    def from_value(self) -> str:
        host, port = self.local
        return f"<sip:{self.caller}@{host}:{port}>;tag={self.from_tag}"

    def to_value(self) -> str:
        base = f"<{self.uri}>"
        return f"{base};tag={self.to_tag}" if self.to_tag else base

    def contact(self) -> str:
        host, port = self.local
        return f"<sip:{self.caller}@{host}:{port}>"


class Call:
    """One call's live state; ``result`` is what gets reported."""

    def __init__(self, leg: CallLeg, result: CallResult, cancel_at: float | None) -> None:
        self.leg = leg
        self.result = result
        self.cancel_at = cancel_at
        self.invite: Request | None = None
        self.invite_retx: Retransmitter | None = None
        self.final: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()
        self.provisional = asyncio.Event()
        self.remote_bye = asyncio.Event()
        self.acks: dict[int, bytes] = {}  # INVITE CSeq number -> the ACK sent for its final
        self.other_retx: Retransmitter | None = None  # CANCEL or BYE
        self.bye_done: asyncio.Future[Response | None] | None = None
        self.started = 0.0
        self.answered_at = 0.0



def _new_branch() -> str:
    return "z9hG4bK" + new_token(8)


def invite(leg: CallLeg, sdp: bytes) -> Request:
    """A fresh INVITE transaction (new branch) with ``leg.cseq`` and any pending credentials."""
    leg.branch = _new_branch()
    headers = Headers([
        ("Via", leg.via(leg.branch)), ("Max-Forwards", "70"), ("From", leg.from_value()),
        ("To", f"<{leg.uri}>"), ("Call-ID", leg.call_id), ("CSeq", f"{leg.cseq} INVITE"),
        ("Contact", leg.contact()), ("Allow", _ALLOW), ("User-Agent", "ratelab-loadgen"),
    ])
    if leg.auth is not None:
        headers.add(*leg.auth)
    if sdp:
        headers.add("Content-Type", "application/sdp")
    return Request("INVITE", leg.uri, headers, sdp)


def cancel(leg: CallLeg, invite_request: Request) -> Request:
    """CANCEL for the pending INVITE: same URI, top Via (branch), From, To, Call-ID, CSeq no."""
    h = invite_request.headers
    headers = Headers([
        ("Via", h.get("via") or ""), ("Max-Forwards", "70"), ("From", h.get("from") or ""),
        ("To", h.get("to") or ""), ("Call-ID", leg.call_id),
        ("CSeq", f"{(h.get('cseq') or '1').split()[0]} CANCEL"),
    ])
    return Request("CANCEL", invite_request.uri, headers)


def ack_for_failure(invite_request: Request, response: Response) -> Request:
    """ACK for a non-2xx final (RFC 3261 17.1.1.3): the INVITE's branch, the response's To."""
    h = invite_request.headers
    headers = Headers([
        ("Via", h.get("via") or ""), ("Max-Forwards", "70"), ("From", h.get("from") or ""),
        ("To", response.headers.get("to") or ""), ("Call-ID", h.get("call-id") or ""),
        ("CSeq", f"{(h.get('cseq') or '1').split()[0]} ACK"),
    ])
    return Request("ACK", invite_request.uri, headers)


def learn_dialog(leg: CallLeg, response: Response) -> None:
    """Take the remote tag, target (Contact) and route set (Record-Route, reversed) from a
    dialog-creating response."""
    to = response.headers.get("to") or ""
    leg.to_tag = tag(to) or leg.to_tag
    contact = response.headers.get("contact")
    if contact:
        first = split_values(contact)[0] if "," in contact else contact
        if "<" in first:
            first = first[first.index("<") + 1 : first.index(">")]
        leg.remote_target = first.split(";")[0].strip() or leg.remote_target
    routes: list[str] = []
    for value in response.headers.get_all("record-route"):
        routes.extend(split_values(value))
    leg.route = list(reversed(routes))


def _in_dialog(leg: CallLeg, method: str, cseq_number: int) -> Request:
    headers = Headers([
        ("Via", leg.via(_new_branch())), ("Max-Forwards", "70"), ("From", leg.from_value()),
        ("To", leg.to_value()), ("Call-ID", leg.call_id), ("CSeq", f"{cseq_number} {method}"),
    ])
    for route in leg.route:
        headers.add("Route", route)
    return Request(method, leg.remote_target or leg.uri, headers)


def ack_for_2xx(leg: CallLeg) -> Request:
    """ACK for a 2xx: a new transaction (own branch) to the remote target, INVITE's CSeq no."""
    return _in_dialog(leg, "ACK", leg.cseq)


def bye(leg: CallLeg) -> Request:
    """BYE in the dialog with the next CSeq number."""
    leg.cseq += 1
    return _in_dialog(leg, "BYE", leg.cseq)


def credentials(leg: CallLeg, response: Response, username: str, password: str, *,
                retry: bool) -> tuple[str, str] | None:
    """(header name, value) answering the 401/407 ``response``, or None when it cannot or
    should not be answered (no usable challenge; on a ``retry`` unless the nonce was stale)."""
    proxy = response.status == 407
    value = response.headers.get("proxy-authenticate" if proxy else "www-authenticate")
    if value is None:
        return None
    try:
        if retry and not Challenge.parse(value).stale:
            return None  # the credentials were refused, not just out of date
        answer = authorization(value, username=username, password=password, method="INVITE",
                               uri=leg.uri, cnonce=new_token(8))
    except DigestError:
        return None
    return ("Proxy-Authorization" if proxy else "Authorization", answer)

"""SIP traces shared by the switch.sip tests: messages built from literal SIP text.

Not a test module (no ``test_`` prefix); import it as ``from tests.switch.sip_traces import ...``.
The transaction helpers assume the RFC 3261 default timers: T1 = 0.5 s, T2 = 4 s, T4 = 5 s, so
64*T1 = 32 s. The SDP bodies are shaped like what carrier gear actually sends: Asterisk/FreeSWITCH
style offers with PCMA/PCMU/G729 and telephone-event, a softphone with IPv6, an answer that rejects
video.
"""

from __future__ import annotations

import textwrap

from switch.sip.message import Request, Response, parse_message
from switch.sip.transaction import ClientTransaction, ServerTransaction

# --- SIP messages for the transaction tests ------------------------------------------------


def sip(text: str) -> Request | Response:
    """Parse a SIP trace written with plain newlines and indentation; adds Content-Length: 0."""
    lines = textwrap.dedent(text).strip("\n").split("\n")
    if not any(line.lower().startswith("content-length:") for line in lines):
        lines.append("Content-Length: 0")
    return parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())


def req(text: str) -> Request:
    msg = sip(text)
    assert isinstance(msg, Request)
    return msg


def resp(text: str) -> Response:
    msg = sip(text)
    assert isinstance(msg, Response)
    return msg


# A B2BUA-style INVITE that came through a proxy: two Vias, two Routes.
INVITE = """
    INVITE sip:bob@biloxi.example.com SIP/2.0
    Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds
    Via: SIP/2.0/UDP client.atlanta.example.com;branch=z9hG4bKold
    Max-Forwards: 70
    Route: <sip:p1.example.com;lr>
    Route: <sip:p2.example.com;lr>
    To: Bob <sip:bob@biloxi.example.com>
    From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
    Call-ID: a84b4c76e66710@pc33.atlanta.example.com
    CSeq: 314159 INVITE
    Contact: <sip:alice@pc33.atlanta.example.com>
    Content-Type: application/sdp
"""


def invite(
    branch: str = "z9hG4bK776asdhds", host: str = "pc33.atlanta.example.com:5060"
) -> Request:
    text = INVITE.replace("z9hG4bK776asdhds", branch).replace("pc33.atlanta.example.com:5060", host)
    return req(text)


def response_to(
    request: Request, status: int, reason: str, to_tag: str | None = "a6c85cf"
) -> Response:
    """A response as the far end would write it (a wire trace, not make_response)."""
    via = request.headers.get_all("Via")
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in via]
    to = request.headers.get("To")
    lines.append(f"To: {to};tag={to_tag}" if to_tag else f"To: {to}")
    for name in ("From", "Call-ID", "CSeq"):
        lines.append(f"{name}: {request.headers.get(name)}")
    return resp("\n".join(lines))


def non_invite(method: str = "OPTIONS", branch: str = "z9hG4bKopt1") -> Request:
    return req(f"""
        {method} sip:carrier.example.com SIP/2.0
        Via: SIP/2.0/UDP sw1.example.com:5060;branch={branch}
        Max-Forwards: 70
        To: <sip:carrier.example.com>
        From: <sip:sw1.example.com>;tag=99
        Call-ID: opt-1@sw1.example.com
        CSeq: 7 {method}
    """)


def ack_for(request: Request, to_tag: str, branch: str | None = None) -> Request:
    """The ACK a UAC sends: same branch for a non-2xx final, a new one (``branch``) for a 2xx."""
    via = request.headers.get_all("Via")[0]
    if branch is not None:
        via = via.replace("z9hG4bK776asdhds", branch)
    return req(f"""
        ACK {request.uri} SIP/2.0
        Via: {via}
        Max-Forwards: 70
        To: {request.headers.get("To")};tag={to_tag}
        From: {request.headers.get("From")}
        Call-ID: {request.headers.get("Call-ID")}
        CSeq: {request.headers.get("CSeq").split()[0]} ACK
    """)


def fire_times(tx: ClientTransaction | ServerTransaction, until: float) -> list[tuple[float, list]]:
    """Drive the timers exactly at each deadline until ``until``; returns (time, outputs)."""
    seen = []
    while (deadline := tx.next_deadline()) is not None and deadline <= until:
        seen.append((deadline, tx.handle_timer(deadline)))
    return seen


# --- SDP bodies ----------------------------------------------------------------------------


def crlf(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


# A customer's offer: session-level c=, four codecs plus DTMF, fmtp/ptime/sendrecv.
OFFER = crlf(
    "v=0",
    "o=FreeSWITCH 1712345678 1712345679 IN IP4 203.0.113.10",
    "s=FreeSWITCH",
    "c=IN IP4 203.0.113.10",
    "t=0 0",
    "m=audio 24580 RTP/AVP 8 0 18 101",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:18 G729/8000",
    "a=fmtp:18 annexb=no",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=ptime:20",
    "a=sendrecv",
)

# A vendor's answer: media-level c= only, picks G729, keeps DTMF.
ANSWER = crlf(
    "v=0",
    "o=- 3894561 3894561 IN IP4 198.51.100.20",
    "s=session",
    "t=0 0",
    "m=audio 31000 RTP/AVP 18 101",
    "c=IN IP4 198.51.100.21",
    "a=rtpmap:18 G729/8000",
    "a=fmtp:18 annexb=no",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=ptime:20",
    "a=sendrecv",
)

# Audio plus video over IPv6, with every kind of verbatim line we keep, in RFC 4566 order.
RICH = crlf(
    "v=0",
    "o=alice 2890844526 2890844527 IN IP6 2001:db8::10",
    "s=Call with video",
    "i=A two-stream call",
    "u=http://www.example.com/seminars/sdp.pdf",
    "e=alice@example.com (Alice)",
    "p=+1 617 555-6011",
    "c=IN IP6 2001:db8::10",
    "b=AS:256",
    "t=2873397496 2873404696",
    "r=7d 1h 0 25h",
    "z=2882844526 -1h 2898848070 0",
    "k=prompt",
    "a=tool:softphone 1.2",
    "a=recvonly",
    "m=audio 49170 RTP/AVP 0 8 101",
    "i=voice",
    "c=IN IP6 2001:db8::11",
    "b=AS:64",
    "a=rtpmap:101 telephone-event/8000",
    "a=rtcp:49171",
    "m=video 51372 RTP/AVP 31 34",
    "b=AS:192",
    "a=rtpmap:31 H261/90000",
)

# An answer to RICH that accepts audio and rejects video with port 0.
REJECTING_ANSWER = crlf(
    "v=0",
    "o=bob 2808844564 2808844564 IN IP4 192.0.2.50",
    "s=-",
    "c=IN IP4 192.0.2.50",
    "t=0 0",
    "m=audio 7000 RTP/AVP 8 101",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "m=video 0 RTP/AVP 31",
)

"""SIP parser benchmark: parse (and separately serialize) a typical INVITE with SDP 100,000 times.

Prints messages per second for parse_message, serialize, and StreamParser framing.

    .venv/bin/python bench/sip_parse.py            # 100,000 iterations
    .venv/bin/python bench/sip_parse.py -n 20000   # quicker
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from switch.sip import StreamParser, parse_message, serialize  # noqa: E402

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 8 0 18 101\r\n"
    b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:18 G729/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
INVITE = (
    b"INVITE sip:+15551234567@sw1.example.net:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---77ba2b6d1e3a5f36;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"Contact: <sip:15551230000@192.0.2.10:5060>\r\n"
    b"To: <sip:+15551234567@sw1.example.net:5060>\r\n"
    b'From: "15551230000" <sip:15551230000@sw1.example.net:5060>;tag=3f5a2b19\r\n'
    b"Call-ID: ZDg2NDkyZjY4MmY1NjkxNWI0ZTQ2NzUxNzU5ZjQ1ODM.\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: Carrier SBC 4.2\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


def rate(label: str, n: int, fn) -> None:
    start = time.perf_counter()
    fn(n)
    elapsed = time.perf_counter() - start
    print(f"{label:<28} {n / elapsed:>12,.0f} messages/s  ({elapsed * 1e6 / n:.2f} us each)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=100_000, help="iterations (default 100,000)")
    n = ap.parse_args().n
    msg = parse_message(INVITE)
    assert serialize(msg) == INVITE

    def parse(k: int) -> None:
        for _ in range(k):
            parse_message(INVITE)

    def ser(k: int) -> None:
        for _ in range(k):
            serialize(msg)

    def stream(k: int) -> None:
        p = StreamParser()
        chunk = INVITE * 100
        for _ in range(k // 100):
            p.feed(chunk)

    print(f"typical INVITE with SDP: {len(INVITE)} bytes, {len(msg.headers)} header fields")
    rate("parse_message", n, parse)
    rate("serialize", n, ser)
    rate("StreamParser (100/feed)", n, stream)


if __name__ == "__main__":
    main()

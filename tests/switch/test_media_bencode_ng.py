"""Bencode (switch.media.bencode) and the ng framing and client (switch.media.ng).

Decoding is fuzzed with hypothesis: junk only ever raises BencodeError / NgProtocolError. The
client is tested against a scripted UDP server on 127.0.0.1 (cookie matching, retransmission,
error and timeout reporting).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.media.bencode import MAX_DEPTH, BencodeError, decode, encode
from switch.media.ng import (
    NgClient,
    NgCodec,
    NgError,
    NgProtocolError,
    NgTimeoutError,
    decode_message,
    encode_message,
)
from tests.switch.media_peers import WAIT, Peer

# --- bencode -------------------------------------------------------------------------------------

values = st.recursive(
    st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@given(values)
def test_bencode_round_trip(value: Any) -> None:
    assert decode(encode(value)) == value


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_bencode_junk_only_raises_bencode_error(junk: bytes) -> None:
    try:
        decode(junk)
        decode(junk, text=True)
    except BencodeError:
        pass


@given(values, st.data())
@settings(max_examples=300)
def test_bencode_mutated_input_only_raises_bencode_error(value: Any, data: st.DataObject) -> None:
    raw = bytearray(encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw)))
        raw[position:position + 1] = data.draw(st.binary(min_size=0, max_size=2))
    with contextlib.suppress(BencodeError):
        decode(bytes(raw))


@pytest.mark.parametrize(("junk", "reason"), [
    (b"", "unexpected end"),
    (b"i-0e", "leading zero or -0"),
    (b"i01e", "leading zero"),
    (b"ie", "bad integer"),
    (b"i1", "without 'e'"),
    (b"i" + b"9" * 30 + b"e", "longer than 20"),
    (b"01:a", "bad string length"),
    (b"5:abc", "runs past the end"),
    (b"l", "list without 'e'"),
    (b"d1:a", "unexpected end"),
    (b"di1ei2ee", "key is not a string"),
    (b"d1:ai1e1:ai2ee", "duplicate dictionary key 'a'"),
    (b"i1ei2e", "trailing data"),
    (b"x", "unexpected byte"),
    (b"l" * (MAX_DEPTH + 1) + b"e" * (MAX_DEPTH + 1), "nesting deeper"),
    (b"d2:\xff\xfei1ee", "not UTF-8"),
])
def test_bencode_rejects_with_a_reason(junk: bytes, reason: str) -> None:
    with pytest.raises(BencodeError, match=reason):
        decode(junk)


def test_bencode_limits_and_text() -> None:
    with pytest.raises(BencodeError, match="exceeds the limit"):
        decode(b"0:" + b" " * 70000)
    assert decode(b"l" * MAX_DEPTH + b"e" * MAX_DEPTH) is not None
    assert decode(b"d3:sdp3:v=0e", text=True) == {"sdp": "v=0"}
    with pytest.raises(BencodeError, match="not UTF-8"):
        decode(b"2:\xff\xfe", text=True)
    assert decode(b"2:\xff\xfe") == b"\xff\xfe"
    # Keys are sorted as bytes on output; rtpengine's unsorted keys decode fine.
    assert encode({"b": 1, "a": 2}) == b"d1:ai2e1:bi1ee"
    assert decode(b"d1:bi1e1:ai2ee") == {"b": 1, "a": 2}
    for bad in (True, 1.0, None, {1: 2}, object()):
        with pytest.raises(BencodeError):
            encode(bad)
    deep: list[Any] = []
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(BencodeError, match="nesting"):
        encode(deep)


# --- ng framing ----------------------------------------------------------------------------------


def test_ng_framing_round_trip() -> None:
    body = {"command": "offer", "call-id": "c@h", "flags": ["trust address"], "n": 3}
    datagram = encode_message("a1b2_7", body)
    assert datagram.startswith(b"a1b2_7 d")
    message = decode_message(datagram)
    assert (message.cookie, message.body, message.json) == ("a1b2_7", body, False)
    as_json = decode_message(encode_message("j", body, as_json=True))
    assert as_json.body == body and as_json.json


@pytest.mark.parametrize(("junk", "reason"), [
    (b"nospace", "no space"),
    (b" d1:ai1ee", "bad cookie"),
    (b"\x00\x01 de", "bad cookie"),
    (b"c" * 65 + b" de", "bad cookie"),
    (b"c li1ee", "not a dictionary"),
    (b"c d1:a", "bad bencode"),
    (b'c {"a": 1.5}', "no bencode form"),
    (b'c {"a": null}', "no bencode form"),
    (b'c {"a": ', "bad JSON"),
    (b"c " + b"[" * 100000, "too long"),
])
def test_ng_framing_rejects(junk: bytes, reason: str) -> None:
    with pytest.raises(NgProtocolError, match=reason):
        decode_message(junk)


@given(st.binary(max_size=200))
@settings(max_examples=300)
def test_ng_junk_only_raises_protocol_error(junk: bytes) -> None:
    with contextlib.suppress(NgProtocolError):
        decode_message(junk)


def test_codec_cookies_are_unique_and_prefixed() -> None:
    codec = NgCodec()
    cookies = {codec.request({"command": "ping"})[0] for _ in range(100)}
    assert len(cookies) == 100 and all(c.startswith(codec.prefix + "_") for c in cookies)
    assert NgCodec().prefix != codec.prefix  # a restarted client does not reuse cookies


# --- the client ---------------------------------------------------------------------------------


class ScriptedServer(Peer):
    """Answers requests as ``reply(body)`` says, ignoring the first ``drop`` datagrams."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = 0
        self.seen: list[bytes] = []
        self.reply: dict[str, Any] | None = {"result": "pong"}
        self.extra: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.seen.append(data)
        if self.drop:
            self.drop -= 1
            return
        cookie = decode_message(data).cookie
        for datagram in self.extra:  # stray replies first: wrong cookies, junk
            self.send(datagram, addr)
        if self.reply is not None:
            self.send(encode_message(cookie, self.reply), addr)


def test_client_matches_cookies_and_retransmits() -> None:
    async def test() -> None:
        server = ScriptedServer()
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: server, local_addr=("127.0.0.1", 0))
        async with NgClient(server.address, timeout=WAIT, attempts=3) as client:
            server.extra = [b"other_1 d6:result4:ponge", b"garbage"]
            await client.ping()
            server.drop = 1  # the first send is lost: the retransmission (same cookie) answers
            server.extra = []
            await client.ping()
            assert decode_message(server.seen[-1]).cookie == decode_message(server.seen[-2]).cookie
            server.reply = {"result": "error", "error-reason": "Unknown call-id"}
            with pytest.raises(NgError, match="ng query failed: Unknown call-id"):
                await client.query("x")
            server.reply = {"result": "ok", "sdp": "v=0\r\n"}
            assert await client.offer("c", "f", "v=0\r\n") == "v=0\r\n"
            server.reply = {"result": "ok"}
            with pytest.raises(NgError, match="reply has no sdp"):
                await client.answer("c", "f", "t", "v=0\r\n")
            server.reply = {"result": "maybe"}
            with pytest.raises(NgError, match="no valid result"):
                await client.delete("c")
            # Concurrent requests each get their own reply.
            server.reply = {"result": "pong"}
            await asyncio.gather(*(client.ping() for _ in range(20)))
            server.reply = None
            with pytest.raises(NgTimeoutError, match="3 sends"):
                await client.ping(timeout=0.3)
        server.close()

    asyncio.run(test())


def test_client_requires_a_sane_configuration() -> None:
    with pytest.raises(ValueError, match="host:port"):
        NgClient("nohost")
    with pytest.raises(ValueError, match="attempts"):
        NgClient("127.0.0.1:1", attempts=0)

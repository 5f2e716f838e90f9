"""Issue 8's checks against the real switch process: whatever arrives, no acknowledged call
loses its CDR, every hostile INVITE gets a final answer, nothing is answered 500, and a long
number stalls nothing.

The switch runs as a subprocess (tests/switch/live.py); customer 'acme' is 127.0.0.1, so a raw
socket on 127.0.0.1 is that customer (spoofing the address is all an attacker needs over UDP).
SIPp plays the honest customer and vendor where calls must complete; raw sockets
(tests/switch/hostile.py) play the hostile customer and, where what reaches a vendor matters, a
vendor that answers every INVITE with 486 and records what it got.

Waits are bounded and wait on the event (an answer on a socket, SIPp's exit, the switch's stop,
which flushes every CDR); no assert is about elapsed time: bench/switch_hostile.py measures that.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from ratelab import SwitchProcess
from tests.switch.hostile import (
    Msg,
    Sip,
    ack_for,
    ack_from_answer,
    read_spool,
    request,
    udp_drops,
)
from tests.switch.hostile_corpus import (
    ROUTED,
    UNROUTED,
    CorpusItem,
    malformed_corpus,
)
from tests.switch.hostile_peers import (
    Placed,
    RawCaller,
    RawVendor,
    TcpPeer,
    UdpPeer,
    options,
    options_answered,
    tcp_exchange,
)
from tests.switch.live import LiveSwitch, vendor
from tests.switch.sipp_runner import SippUas, run_uac

#: What a switch may answer to a dialled number it will not take for its length: 400 Bad
#: Request, 413/513 (the parser's size limits), 414 Request-URI Too Long, 484 Address Incomplete.
LENGTH_REFUSALS = frozenset({400, 413, 414, 484, 513})


def address(switch: SwitchProcess, transport: str) -> tuple[str, int]:
    """The switch's (host, port) on ``transport``."""
    return next((h, p) for t, h, p in switch.addresses if t == transport)


def final_status(placed: Placed) -> int | None:
    """The status of the first final answer a raw INVITE got (None: none yet)."""
    return placed.final.status if placed.final is not None else None


def call_id_prefix(placed: Placed) -> str:
    """The ASCII start of a raw INVITE's Call-ID, up to its first non-ASCII byte.

    How a CDR spells non-UTF-8 bytes is the CDR writer's business (escaped, flagged); the
    ASCII part before them is kept as it is, so it finds the CDR whatever the spelling.
    """
    raw = placed.invite.get(b"Call-ID") or b""
    end = next((i for i, c in enumerate(raw) if c >= 0x80), len(raw))
    return raw[:end].decode("ascii")


def calls_without_one_cdr(placed: list[Placed], records: list[dict]) -> dict[str, int]:
    """Raw INVITEs answered as calls (a final other than 400) -> their CDR count, when not 1.

    A 400 refuses a malformed message before it is a call, so it has no CDR; every other
    final answer acknowledges a call, and the promise is one CDR for it.
    """
    out = {}
    for p in placed:
        if p.final is None or p.final.status == 400:
            continue
        prefix, whole = call_id_prefix(p), (p.invite.get(b"Call-ID") or b"").isascii()
        count = sum(1 for r in records
                    if (r.get("call_id") == prefix if whole
                        else str(r.get("call_id", "")).startswith(prefix)))
        if count != 1:
            out[f"{p.label} {prefix!r} -> {final_status(p)}"] = count
    return out


# --- 1. no completed call without its CDR while hostile INVITEs are interleaved -------------

#: (label, number, From user, bytes appended to the Call-ID): non-UTF-8 where the CDR carries
#: it (caller, call_id), to a number with no route (its CDR is written at once, in the same
#: group commit as honest calls' CDRs) and to a routed one (a whole call, hung up by us).
HOSTILE_VARIANTS: list[tuple[str, str, bytes, bytes]] = [
    ("from_user 0xff, unrouted", UNROUTED, b"1555\xff0001", b""),
    ("call_id 0xc3 0x28, unrouted", UNROUTED, b"15550000002", b"\xc3\x28"),
    ("from_user 0xc3 0x28, routed", ROUTED, b"1555\xc3\x280003", b""),
    ("call_id 0xff, routed", ROUTED, b"15550000004", b"\xff"),
]


def _send_hostile(caller: RawCaller, switch: tuple[str, int], stop: threading.Event) -> None:
    """One hostile INVITE every 100 ms, cycling through HOSTILE_VARIANTS, until ``stop``."""
    for n in range(10_000):   # bounded; stop ends it long before
        if stop.is_set():
            return
        label, number, from_user, odd = HOSTILE_VARIANTS[n % len(HOSTILE_VARIANTS)]
        call_id = f"hostile-{n}-".encode() + odd + b"@127.0.0.1"
        caller.invite(request("INVITE", number, switch, call_id=call_id, from_user=from_user,
                              from_tag=f"hf{n}", local_port=caller.port), label)
        stop.wait(0.1)


@pytest.mark.usefixtures("sipp_installed")
def test_no_completed_call_loses_its_cdr_while_hostile_invites_interleave(
        tmp_path: Path) -> None:
    calls = 200
    uas = SippUas("uas_answer.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port))
    with uas, live.process() as switch:
        udp = address(switch, "udp")
        caller = RawCaller(udp)
        stop = threading.Event()
        sender = threading.Thread(target=_send_hostile, args=(caller, udp, stop), daemon=True)
        sender.start()
        try:
            uac = run_uac("uac_basic.xml", f"{udp[0]}:{udp[1]}", calls=calls, rate=20,
                          duration_ms=200, service=ROUTED, trace_msg=True,
                          workdir=tmp_path / "uac", timeout=60)
        finally:
            stop.set()
            sender.join(timeout=5)
        # hostile calls still in progress end on their own: final answer (ACKed), or 2xx -> BYE
        caller.wait_for(lambda: not caller.unanswered() and not caller.hung_up_unanswered(),
                        timeout=15)
        caller.close()
        hostile = list(caller.calls.values())
    # the switch has stopped gracefully: every CDR it acknowledged is on disk

    assert uac.successful == calls and uac.failed == 0, uac.describe()
    assert uac.message_file is not None
    sipp_call_ids = set(re.findall(r"^Call-ID: (\S+)", uac.message_file.read_text(),
                                   re.MULTILINE))
    assert len(sipp_call_ids) == calls

    spool = read_spool(live.spool)
    assert spool.bad == [], f"CDR lines that are not UTF-8 JSON objects: {spool.bad[:5]}"
    per_call = Counter(r.get("call_id") for r in spool.records)
    lost = sorted(c for c in sipp_call_ids if per_call[c] == 0)
    doubled = sorted(c for c in sipp_call_ids if per_call[c] > 1)
    finals = Counter((p.label, final_status(p)) for p in hostile)
    assert not lost and not doubled, (
        f"{len(lost)} of {calls} completed SIPp calls have no CDR ({lost[:10]}), "
        f"{len(doubled)} have several; hostile INVITEs: {len(hostile)}, "
        f"(variant, final) counts {dict(finals)}")

    assert len(hostile) >= 50, "the hostile sender did not run alongside the SIPp calls"
    unanswered = [p.label for p in hostile if p.final is None]
    assert not unanswered, (f"{len(unanswered)} of {len(hostile)} hostile INVITEs got no final "
                            f"answer: {Counter(unanswered)}")
    assert all(final_status(p) != 500 for p in hostile), dict(finals)
    answered = [p for p in hostile if 200 <= (final_status(p) or 0) < 300]
    assert all(p.bye_answer is not None and p.bye_answer.status == 200 for p in answered), \
        f"{sum(p.bye_answer is None for p in answered)} BYEs of answered hostile calls unanswered"
    # the hostile calls were acknowledged too (404, or 200 then BYE 200): theirs are owed as well
    missing = calls_without_one_cdr(hostile, spool.records)
    assert not missing, f"hostile calls answered without exactly one CDR: {missing}"


# --- 2. every poisoned INVITE gets a final answer -----------------------------------------


def _poison(switch: tuple[str, int], port: int, name: str, bad: bytes) -> dict[str, Msg]:
    """INVITEs to an unrouted number with ``bad`` in the From user, To user, Call-ID,
    Request-URI user and User-Agent (one place each)."""
    def make(place: str, **kw: object) -> Msg:
        kw.setdefault("call_id", f"poison-{place}-{name}")
        return request("INVITE", kw.pop("number", UNROUTED), switch,  # type: ignore[arg-type]
                       local_port=port, from_tag=f"pf-{place}", **kw)  # type: ignore[arg-type]
    return {
        f"from_user {name}": make("from", from_user=b"1555" + bad + b"01"),
        f"to_user {name}": make("to", to_user=b"8613" + bad + b"8000"),
        f"call_id {name}": make("cid", call_id=f"poison-cid-{name}-".encode() + bad
                                + b"@127.0.0.1"),
        f"request_uri_user {name}": make("ruri", number=b"86138" + bad + b"00138000"),
        f"user_agent {name}": make("ua").set(b"User-Agent", b"softphone " + bad),
    }


def test_every_poisoned_invite_gets_a_final_answer(tmp_path: Path) -> None:
    with RawVendor() as far:
        live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", far.port))
        with live.process() as switch:
            udp = address(switch, "udp")
            caller = RawCaller(udp)
            # a lone 0xff; 0xc3 0x28, an invalid 2-byte sequence
            for name, bad in (("0xff", b"\xff"), ("0xc3_0x28", b"\xc3\x28")):
                for label, msg in _poison(udp, caller.port, name, bad).items():
                    caller.invite(msg, label)
            caller.wait_for(lambda: not caller.unanswered(), timeout=10)
            caller.close()
            alive = options_answered(udp)
        got = {p.label: final_status(p) for p in caller.calls.values()}
        assert alive == 200
        assert all(s is not None and s >= 200 for s in got.values()), \
            f"INVITEs left without a final answer (None): {got}"
        assert 500 not in got.values(), got
        spool = read_spool(live.spool)
        assert spool.bad == [], spool.bad[:5]
        missing = calls_without_one_cdr(list(caller.calls.values()), spool.records)
        assert not missing, f"poisoned calls answered without exactly one CDR: {missing}"


# --- 3. long numbers ------------------------------------------------------------------------


def test_60000_digit_invite_over_tcp_is_refused_and_options_still_answered(
        tmp_path: Path) -> None:
    with RawVendor() as far:
        live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", far.port))
        with live.process() as switch:
            tcp = address(switch, "tcp")
            with TcpPeer(tcp) as conn:
                # The number is only in the Request-URI (To stays short) so the message is
                # under the 64 KiB stream limit: it is the number, not the size, under test.
                long_invite = request("INVITE", "44" + "0" * 59_998, tcp, call_id="long-tcp",
                                      to_user=ROUTED, from_user="longtcp", transport="TCP",
                                      local_port=conn.port)
                conn.send(long_invite.encode())
                conn.send(options(tcp, "options-same-conn", local_port=conn.port,
                                  transport="TCP"))
                # another connection: is the switch as a whole still answering?
                other, _ = tcp_exchange(tcp, options(tcp, "options-other-conn",
                                                     transport="TCP"),
                                        until=lambda ms: any(m.status for m in ms), timeout=5)
                # The switch may refuse the long INVITE at the stream parser and close the
                # connection (then the OPTIONS queued behind it on that connection is lost,
                # which is allowed); if it stays open, that OPTIONS must be answered too.
                conn.wait_for(lambda ms: _final_for(ms, b"long-tcp") is not None
                              and _final_for(ms, b"options-same-conn") is not None, timeout=15)
                long_final = _final_for(conn.messages, b"long-tcp")
                if long_final is not None and long_final.status != 200 and not conn.closed:
                    with contextlib.suppress(OSError):   # it may close right after answering
                        conn.send(ack_for(long_invite, long_final))
            udp_alive = options_answered(address(switch, "udp"))

        assert [m.status for m in other] == [200], \
            "OPTIONS on another TCP connection not answered within 5 s of the long INVITE"
        same = _final_for(conn.messages, b"options-same-conn")
        assert conn.closed or (same is not None and same.status == 200), \
            "OPTIONS behind the long INVITE on its (still open) connection not answered in 15 s"
        assert udp_alive == 200
        assert long_final is not None, "the 60,000-digit INVITE got no final answer"
        assert long_final.status in LENGTH_REFUSALS, long_final.start
        assert b"longtcp" not in far.from_users(), "the 60,000-digit number was routed"


def _final_for(messages: list[Sip], call_id: bytes) -> Sip | None:
    """The first final answer with ``call_id`` among ``messages``."""
    return next((m for m in messages if m.call_id == call_id and (m.status or 0) >= 200), None)


def test_number_over_32_digits_gets_484_and_its_cdr_says_so(tmp_path: Path) -> None:
    number = "44" + "7" * 38   # 40 digits, a routed prefix: only its length should stop it
    with RawVendor() as far:
        live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", far.port))
        with live.process() as switch:
            udp = address(switch, "udp")
            caller = RawCaller(udp)
            placed = caller.invite(request("INVITE", number, udp, call_id="forty-digits",
                                           from_user="forty", local_port=caller.port))
            caller.wait_for(lambda: placed.final is not None, timeout=10)
            caller.close()
        assert final_status(placed) == 484, placed.final.start if placed.final else "no answer"
        assert b"forty" not in far.from_users(), "the 40-digit number was routed"
        records = [r for r in read_spool(live.spool).records if r["call_id"] == "forty-digits"]
        assert [r["sip_code"] for r in records] == [484]
        assert records[0]["vendor"] is None and records[0]["attempts"] == []


# --- 4. 0 answers of 500 to a malformed corpus ----------------------------------------------


class CorpusClient(UdpPeer):
    """Sends corpus items; ACKs every final answer to an INVITE so retransmissions stop."""

    def __init__(self, switch: tuple[str, int], items: dict[bytes, CorpusItem]) -> None:
        self.switch = switch
        self.items = items
        super().__init__()

    def on_message(self, msg: Sip) -> None:
        status = msg.status or 0
        if status >= 300 and msg.cseq_method == b"INVITE":
            item = self.items.get(msg.call_id[:14])
            ruri = item.ruri if item is not None else b"sip:" + ROUTED.encode() + b"@127.0.0.1"
            self.sendto(ack_from_answer(msg, ruri), self.switch)


def test_malformed_corpus_gets_no_500_and_strict_answers(tmp_path: Path) -> None:
    with RawVendor() as far:
        live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", far.port))
        with live.process() as switch:
            udp = address(switch, "udp")
            corpus = malformed_corpus(udp, size=2000, seed=8)
            by_id = {item.call_id: item for item in corpus}
            clients = [CorpusClient(udp, by_id) for _ in range(4)]
            drops_before = udp_drops(udp[1])
            for n, item in enumerate(corpus):
                clients[n % len(clients)].sendto(item.data, udp)
                # pace at about 500 datagrams/s so the switch's socket buffer never overflows
                if n % 10 == 9:
                    time.sleep(0.02)
            _wait_quiet(clients, quiet=2.0, limit=60.0)
            drops = (udp_drops(udp[1]) or 0) - (drops_before or 0)
            alive = switch.running and options_answered(udp) == 200
            received = [m for c in clients for m in c.snapshot()]
            for client in clients:
                client.close()
        vendor_saw = far.from_users()
    # The operator sees why messages were refused: the stop log counts them by kind.
    counters = switch.log_text().split("counters: ", 1)[-1]
    assert "malformed.bad_max_forwards=" in counters and "malformed.bad_via=" in counters, \
        counters[:2000]

    answers: dict[bytes, list[Sip]] = {}
    unattributed: list[Sip] = []
    for msg in received:
        if msg.status is None:
            continue
        key = msg.call_id[:14]
        if key in by_id:
            answers.setdefault(key, []).append(msg)
        else:
            unattributed.append(msg)
    statuses = Counter(m.status for m in received if m.status is not None)
    distinct = Counter(status for _, _, status in {(m.call_id, m.cseq_number, m.status)
                                                   for m in received if m.status is not None})
    print(f"\nmalformed corpus: {len(corpus)} datagrams, answered {len(answers)}, "
          f"unattributed answers {len(unattributed)}, kernel drops {drops}\n"
          f"answers by status (retransmissions included): {dict(sorted(statuses.items()))}\n"
          f"distinct answers by status: {dict(sorted(distinct.items()))}")

    def statuses_of(item: CorpusItem) -> list[int]:
        return [m.status for m in answers.get(item.call_id, []) if m.status is not None]

    def finals_of(item: CorpusItem) -> set[int]:
        return {s for s in statuses_of(item) if s >= 200}

    def pick(kind: str, base: str | None = None) -> list[CorpusItem]:
        return [i for i in corpus if i.kind == kind and (base is None or i.base == base)]

    # what each structured mutation got, per base (pytest -s shows it; a reading aid)
    for kind in dict.fromkeys(i.kind for i in corpus
                              if not i.kind.startswith("flip*") and i.kind != "truncate"):
        row = {i.base: sorted(finals_of(i)) or "-" for i in pick(kind)}
        routed_mark = " (reached the vendor)" if any(
            i.marker in vendor_saw for i in pick(kind, "invite_routed")) else ""
        print(f"  {kind:32s} {row}{routed_mark}")

    got_500 = Counter(f"{i.kind}/{i.base}" for i in corpus if 500 in statuses_of(i))
    assert statuses[500] == 0, f"500 answers by mutation/base: {dict(got_500)}"
    assert alive, "the switch is not alive and answering OPTIONS after the corpus"
    # a dropped datagram was never judged: the corpus must have been delivered whole
    assert drops == 0, f"the switch's UDP socket dropped {drops} datagrams: pace slower"

    # a request the switch would pass on (an INVITE) must not go out on a bad Max-Forwards
    max_forwards = [i for i in corpus if i.kind.startswith("max_forwards=")
                    and i.base.startswith("invite")]
    assert {(i.kind, i.base): finals_of(i) for i in max_forwards} == \
        {(i.kind, i.base): {400} for i in max_forwards}
    routed = sorted(i.kind for i in max_forwards if i.marker in vendor_saw)
    assert not routed, f"routed despite a bad Max-Forwards: {routed}"

    angle = pick("ruri_in_angle_brackets")
    assert {i.base: finals_of(i) for i in angle} == {i.base: {400} for i in angle}

    port_65536 = pick("via_port=65536")
    assert not any(200 <= s < 300 for i in port_65536 for s in finals_of(i)), \
        {i.base: finals_of(i) for i in port_65536}
    assert not [i for i in port_65536 if i.marker in vendor_saw], "Via port 65536 was routed"

    nul = pick("nul_in_subject")
    assert {i.base: finals_of(i) for i in nul} == {i.base: {400} for i in nul}

    (rfc2543,) = pick("via_no_branch", "invite_routed")
    assert rfc2543.marker in vendor_saw, "the RFC 2543-style INVITE did not reach the vendor"
    assert finals_of(rfc2543) == {486}, statuses_of(rfc2543)   # the vendor's answer, relayed
    (rfc2543_options,) = pick("via_no_branch", "options")
    assert finals_of(rfc2543_options) == {200}, statuses_of(rfc2543_options)


def _wait_quiet(peers: list[UdpPeer], *, quiet: float, limit: float) -> None:
    """Return once no peer received a new datagram for ``quiet`` seconds (at most ``limit``)."""
    deadline = time.monotonic() + limit
    seen = -1
    while time.monotonic() < deadline:
        count = sum(len(p.received) + len(p.unparsed) for p in peers)
        if count == seen:
            return
        seen = count
        time.sleep(quiet)   # a quiet period is what this waits for: no event marks silence


# --- 5. TCP: a valid message followed by garbage in one segment -----------------------------


@pytest.mark.parametrize("garbage, after", [
    (b"this is not SIP at all\r\n\r\n", []),          # nothing to answer it with
    (None, [400]),                                     # a request we can answer: 400
])
def test_tcp_valid_message_then_garbage_in_one_segment(
        tmp_path: Path, garbage: bytes | None, after: list[int]) -> None:
    live = LiveSwitch(tmp_path / "sw")
    with live.process() as switch:
        tcp = address(switch, "tcp")
        valid = options(tcp, "valid-first", transport="TCP")
        if garbage is None:   # intact Via/From/To/Call-ID/CSeq, an invalid Content-Length
            spoiled = request("OPTIONS", "ping", tcp, call_id="garbage-second",
                              transport="TCP")
            garbage = Msg(spoiled.start, spoiled.headers, b"", b"abc").encode()
        messages, closed = tcp_exchange(tcp, valid + garbage, timeout=5)
    assert [(m.status, m.call_id) for m in messages][:1] == [(200, b"valid-first")], \
        f"the valid OPTIONS before the garbage was not answered: {[m.start for m in messages]}"
    assert [m.status for m in messages] == [200, *after]
    assert closed, "the switch did not close the connection after the garbage"


# --- 6. a cancelled attempt is recorded with 487 --------------------------------------------


@pytest.mark.usefixtures("sipp_installed")
def test_cancelled_attempt_is_recorded_with_487(tmp_path: Path) -> None:
    uas = SippUas("uas_ring_cancel.xml", workdir=tmp_path / "uas")
    live = LiveSwitch(tmp_path / "sw", routing=vendor("v1", uas.port))
    with uas, live.process() as switch:
        udp = address(switch, "udp")
        uac = run_uac("uac_cancel.xml", f"{udp[0]}:{udp[1]}", calls=2, rate=10,
                      service=ROUTED, workdir=tmp_path / "uac", timeout=30)
    assert uac.successful == 2 and uac.failed == 0, uac.describe()
    records = read_spool(live.spool).records
    assert [(r["sip_code"], r["disconnect_reason"]) for r in records] == [(487, "no_answer")] * 2
    assert [[(a["vendor"], a["sip_code"]) for a in r["attempts"]] for r in records] == \
        [[("v1", 487)]] * 2

"""The sequences that found bugs in the B2BUA engine, kept as plain examples.

Each drives the property tests' state machine (tests/switch/b2bua_machine.py, its invariants
included) through one sequence, then asserts what that sequence is about.
"""

from __future__ import annotations

from tests.switch.b2bua_machine import B2buaMachine


def test_a_vendor_silent_after_100_trying_leaves_nothing_behind():
    """The INVITE client transaction had a 100, so timer B was off; after the invite timeout's
    CANCEL went unanswered it used to stay in the table (and its call findable) forever."""
    m = B2buaMachine()
    m.invite("7", 0, False, 70)
    m.vendor_answer(0, 100, False)
    m.advance(8_100)
    assert [r.method for r, _ in m.requests] == ["CANCEL"]
    m.teardown()
    assert m.h.engine.stats["cancel_unanswered"] == 1
    assert m.h.cdr()["attempts"][0]["sip_code"] == 408


def test_a_relayed_reinvite_that_only_rings_still_gets_a_final_answer():
    m = B2buaMachine()
    m.invite("7", 0, False, 70)
    m.vendor_answer(0, 200, False)
    m.customer_ack(0)
    m.customer_in_dialog(0, "INVITE")
    m.answer_request(0, 1)                      # the vendor rings on the re-INVITE, no more
    m.teardown()
    reinvite = next(s.key for s in m.sent if s.key[3] == "INVITE" and s.call is None)
    assert m.finals[reinvite] == {408}
    assert [r.method for r, _ in m.requests if r.method == "CANCEL"] == ["CANCEL"]


def test_a_merged_invite_gets_482_even_when_its_cseq_is_the_same():
    """Same Call-ID, From tag and CSeq on another branch is another transaction (8.2.2.2), not
    a retransmission to absorb: it used to get no answer at all."""
    m = B2buaMachine()
    m.invite("7", 0, False, 70)
    m.merged_invite(0, True)
    assert m.finals[m.calls[1].key] == {482}
    m.advance(20_000)                           # the first call ends and is reaped
    m.retransmit(0)                             # the 482 was lost: the same INVITE again
    assert m.finals[m.calls[1].key] == {482}, "a new call was started from a retransmission"
    m.teardown()


def test_an_abandoned_vendor_leg_can_neither_end_nor_reach_the_call():
    m = B2buaMachine()
    m.invite("44", 0, False, 70)
    m.vendor_answer(0, 100, False)
    m.advance(8_100)                            # v1 times out: CANCEL, then v2
    m.vendor_answer(1, 200, False)              # v1 answers late: ACKed and hung up
    m.vendor_answer(0, 200, False)              # v2 answers: the call goes on there
    m.customer_ack(0)
    m.vendor_answer(1, 200, False)              # v1's 200 again: not ACKed with v2's ACK
    m.vendor_in_dialog(1, "BYE")                # v1's BYE: 481, the call goes on
    m.vendor_in_dialog(1, "INVITE")
    assert m.h.finished == []
    m.teardown()
    assert m.h.cdr()["vendor"] == "v2"


def test_an_invite_retransmitted_after_its_call_ended_starts_no_second_call():
    """The customer never saw the 200 (so it never ACKed) and retransmits its INVITE; the
    vendor has hung up meanwhile. The call used to be reaped 10 s after its end, and the
    retransmission then became a new call with a new CDR."""
    m = B2buaMachine()
    m.invite("7", 0, False, 70)
    m.vendor_answer(0, 200, False)
    m.vendor_in_dialog(0, "BYE")
    m.advance(20_000)
    (invite,) = m._retransmittable()
    m.h.deliver(invite.raw, invite.peer)
    m._read()
    assert len(m.h.finished) == 1
    m.teardown()

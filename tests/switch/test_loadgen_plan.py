"""Mixes, plan files and one-process plans of the load generator."""

from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path

import pytest

from switch.loadgen import (
    BehaviourMix,
    CustomerSpec,
    DurationMix,
    LoadPlan,
    MixError,
    PlanError,
    Uac,
    VendorSpec,
    load_plan,
    run_plan,
    run_plan_sync,
)


def test_behaviour_mix_forms_agree_and_the_remainder_is_answered() -> None:
    text = BehaviourMix.parse("ring=0.1,486=0.1,503=0.05,no_answer=0.05")
    table = BehaviourMix.from_mapping({"ring": 0.1, "no_answer": 0.05,
                                       "refuse": {486: 0.1, "503": 0.05}})
    assert text == table
    assert text.answer == pytest.approx(0.7)
    rng_a, rng_b = random.Random(9), random.Random(9)
    assert [text.pick(rng_a) for _ in range(50)] == [table.pick(rng_b) for _ in range(50)]


@pytest.mark.parametrize(("spec", "message"), [
    ("answer=0.9,486=0.2", "must sum to <= 1"),
    ("answer=x", "is not a number"),
    ("ring=1.5", "outside 0..1"),
    ("dance=0.1", "unknown behaviour 'dance'"),
    ("200=0.1", "use 300-699"),
    ("answer", "is not NAME=PROPORTION"),
])
def test_behaviour_mix_errors_say_what_to_do(spec: str, message: str) -> None:
    with pytest.raises(MixError, match=message):
        BehaviourMix.parse(spec)


def test_duration_mix() -> None:
    mix = DurationMix.parse("2:0.5,5:0.3,20:0.2")
    rng = random.Random(0)
    draws = [mix.pick(rng) for _ in range(2000)]
    assert set(draws) == {2.0, 5.0, 20.0}
    assert 0.4 < draws.count(2.0) / 2000 < 0.6
    with pytest.raises(MixError, match="must sum to 1"):
        DurationMix.parse("2:0.5")
    with pytest.raises(MixError, match="negative"):
        DurationMix.parse("-1")


def test_uac_argument_errors() -> None:
    with pytest.raises(ValueError, match="positive number of calls per second"):
        Uac("127.0.0.1:5060", rate=0)
    with pytest.raises(ValueError, match="both username and password"):
        Uac("127.0.0.1:5060", username="alice")
    with pytest.raises(MixError, match="digit string"):
        Uac("127.0.0.1:5060", numbers=["44-77"])


def test_run_plan_two_vendors_two_customers_one_loop() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        fixed = probe.getsockname()[1]
    seen: dict[str, tuple[str, int]] = {}

    async def scenario() -> object:
        plan = LoadPlan(vendors=[VendorSpec("good", port=0, mix=BehaviourMix()),
                                 VendorSpec("busy", port=0,
                                            mix=BehaviourMix.parse("486=1"))],
                        drain_seconds=0.1)

        def started(vendors, customers) -> None:  # type: ignore[no-untyped-def]
            for uac in customers:
                seen[uac.name] = uac.address
            good, busy = (v.address for v in vendors)
            customers[0].target, customers[1].target = good, busy

        plan.customers = [
            CustomerSpec("c-good", rate=50, calls=5, durations=DurationMix(((0.05, 1.0),)),
                         local_port=fixed),
            CustomerSpec("c-busy", rate=50, calls=4, start_delay=0.05),
        ]
        return await run_plan(plan, started)

    result = asyncio.run(scenario())
    assert seen["c-good"] == ("127.0.0.1", fixed)  # ip_port customers need a known port
    good, busy = result.customers["c-good"], result.customers["c-busy"]  # type: ignore[attr-defined]
    assert good.by_code == {200: 5} and good.by_outcome == {"completed": 5}
    assert busy.by_code == {486: 4}
    vendors = result.vendors  # type: ignore[attr-defined]
    assert vendors["good"].byes_received == 5 and vendors["busy"].refused == {486: 4}
    text = result.text()  # type: ignore[attr-defined]
    assert text.startswith("plan finished in") and "9 calls placed, 5 answered" in text


def test_load_plan_toml(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text("""
drain_seconds = 0.5

[[vendors]]
name = "v1"
port = 5080
ring_seconds = 2
seed = 1
mix = { answer = 0.7, ring = 0.1, no_answer = 0.05, refuse = { 486 = 0.1, 503 = 0.05 } }
require_auth = ["alice", "s3cret"]

[[customers]]
name = "c1"
target = "127.0.0.1:5060"
rate = 20
calls = 100
numbers = ["4477009", "3460"]
durations = { 2 = 0.5, 5 = 0.3, 20 = 0.2 }
local_port = 5070
tech_prefix = "0099"
username = "alice"
password = "s3cret"
cancel_after = 3
cancel_ratio = 0.2
""")
    plan = load_plan(path)
    vendor, customer = plan.vendors[0], plan.customers[0]
    assert vendor.mix.refuse == {486: 0.1, 503: 0.05} and vendor.require_auth == ("alice",
                                                                                    "s3cret")
    assert customer.target == ("127.0.0.1", 5060) and customer.local_port == 5070
    assert customer.durations.choices == ((2.0, 0.5), (5.0, 0.3), (20.0, 0.2))
    assert customer.cancel_after == 3.0 and plan.drain_seconds == 0.5
    assert customer.build().tech_prefix == "0099"


@pytest.mark.parametrize(("text", "message"), [
    ('[[vendors]]\nname = "v"\nmix = { answer = 0.9, refuse = { 486 = 0.2 } }\n',
     r"vendors\[0\] \(v\): mix: mix: proportions sum to 1.1"),
    ('[[customers]]\nname = "c"\ncolour = 1\n', "unknown key 'colour'"),
    ('[[customers]]\nrate = 1\n', "missing name"),
    ('[[customers]]\nname = "c"\ntarget = "x"\n', "HOST:PORT"),
    ('[[vendors]]\nname = "v"\n[[vendors]]\nname = "v"\n', "used twice"),
    ("speed = 3\n", "unknown top-level key 'speed'"),
    ("[[vendors\n", "not valid TOML"),
])
def test_load_plan_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PlanError, match=message):
        load_plan(path)


def test_plan_without_customers_needs_seconds() -> None:
    with pytest.raises(PlanError, match="set seconds"):
        run_plan_sync(LoadPlan(vendors=[VendorSpec("v", port=0)]))
    result = run_plan_sync(LoadPlan(vendors=[VendorSpec("v", port=0)], seconds=0.05,
                                    drain_seconds=0))
    assert result.vendors["v"].invites == 0

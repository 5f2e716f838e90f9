"""One-process load plans: several vendors and customers in one event loop.

A plan is a :class:`LoadPlan` built in Python or read from TOML (:func:`load_plan`; the format
is in docs/loadgen.md). :func:`run_plan` binds every vendor, then every customer (so a port
clash shows before any call), runs the customers to completion, waits ``drain_seconds`` for
the last BYEs and ACKs, closes everything and returns the per-endpoint summaries.

>>> plan = plan_from_dict({
...     "drain_seconds": 0.1,
...     "vendors": [{"name": "v1", "port": 0, "mix": {"answer": 0.5, "refuse": {486: 0.5}}}],
...     "customers": [{"name": "c1", "target": "127.0.0.1:1", "calls": 1}]})
>>> plan.vendors[0].mix.refuse, plan.customers[0].target
({486: 0.5}, ('127.0.0.1', 1))
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switch.loadgen.common import Address, parse_hostport
from switch.loadgen.mix import BehaviourMix, DurationMix, MixError, NumberSource
from switch.loadgen.results import UacSummary
from switch.loadgen.uac import Uac
from switch.loadgen.uas import Uas, UasStats

__all__ = [
    "CustomerSpec",
    "LoadPlan",
    "PlanError",
    "PlanResult",
    "VendorSpec",
    "load_plan",
    "plan_from_dict",
    "run_plan",
    "run_plan_sync",
]


class PlanError(ValueError):
    """A plan that cannot run; the message names the entry and key and says what to do.

    >>> plan_from_dict({"vendors": [{"name": "v", "colour": 1}]})
    Traceback (most recent call last):
    ...
    switch.loadgen.plan.PlanError: vendors[0] (v): unknown key 'colour'; allowed: name, host, \
port, mix, ring_seconds, answer_delay, seed, require_auth
    """


@dataclass
class VendorSpec:
    """A :class:`Uas` to start: ``mix`` as for Uas, ``require_auth`` = (user, password)."""

    name: str
    host: str = "127.0.0.1"
    port: int = 5080
    mix: BehaviourMix = field(default_factory=BehaviourMix)
    ring_seconds: float = 1.0
    answer_delay: float = 0.0
    seed: int = 0
    require_auth: tuple[str, str] | None = None

    def build(self) -> Uas:
        """The (unstarted) endpoint."""
        return Uas(self.host, self.port, mix=self.mix, ring_seconds=self.ring_seconds,
                   answer_delay=self.answer_delay, seed=self.seed, name=self.name,
                   require_auth=self.require_auth)


@dataclass
class CustomerSpec:
    """A :class:`Uac` to run; ``start_delay`` seconds after the plan starts."""

    name: str
    target: Address = ("127.0.0.1", 5060)
    rate: float = 10.0
    calls: int = 10
    numbers: list[str] = field(default_factory=lambda: ["4477009"])
    digits: int = 5
    durations: DurationMix = field(default_factory=DurationMix)
    local_host: str = "127.0.0.1"
    local_port: int = 0
    tech_prefix: str = ""
    username: str | None = None
    password: str | None = None
    cancel_after: float | None = None
    cancel_ratio: float = 1.0
    seed: int = 0
    max_seconds: float = 3600.0
    answer_timeout: float = 120.0
    caller: str = "loadgen"
    start_delay: float = 0.0

    def build(self) -> Uac:
        """The (unstarted) endpoint."""
        return Uac(self.target, calls=self.calls, rate=self.rate, numbers=self.numbers,
                   digits=self.digits, durations=self.durations, local_host=self.local_host,
                   local_port=self.local_port, tech_prefix=self.tech_prefix,
                   username=self.username, password=self.password,
                   cancel_after=self.cancel_after, cancel_ratio=self.cancel_ratio,
                   seed=self.seed, max_seconds=self.max_seconds,
                   answer_timeout=self.answer_timeout, caller=self.caller, name=self.name)


@dataclass
class LoadPlan:
    """Vendors and customers for one run. With no customers, ``seconds`` says how long the
    vendors serve; with customers it is a minimum run time (None: until they finish)."""

    vendors: list[VendorSpec] = field(default_factory=list)
    customers: list[CustomerSpec] = field(default_factory=list)
    drain_seconds: float = 1.0
    seconds: float | None = None


@dataclass
class PlanResult:
    """Per-endpoint summaries, by name.

    >>> PlanResult({}, {"c": UacSummary("c")}, 1.0).text().splitlines()[0]
    'plan finished in 1.0 s: 0 calls placed, 0 answered.'
    """

    vendors: dict[str, UasStats]
    customers: dict[str, UacSummary]
    elapsed: float

    def text(self) -> str:
        """A headline, then one paragraph per customer and per vendor."""
        placed = sum(s.placed for s in self.customers.values())
        answered = sum(s.answered for s in self.customers.values())
        lines = [f"plan finished in {self.elapsed:.1f} s: {placed} calls placed, "
                 f"{answered} answered."]
        lines += [s.text() for s in self.customers.values()]
        lines += [s.text() for s in self.vendors.values()]
        return "\n".join(lines)


async def run_plan(plan: LoadPlan,
                   on_started: Callable[[list[Uas], list[Uac]], None] | None = None,
                   stop: asyncio.Event | None = None) -> PlanResult:
    """Run ``plan`` in the running loop; ``on_started`` sees the bound endpoints first.

    Setting ``stop`` ends the run early: customers place no more calls and wrap up (CANCEL
    or BYE), and the ``seconds`` wait ends.

    >>> plan = LoadPlan(vendors=[VendorSpec("v", port=0)], seconds=0.05, drain_seconds=0)
    >>> asyncio.run(run_plan(plan)).vendors["v"].invites
    0
    """
    if not plan.customers and plan.seconds is None:
        raise PlanError("the plan has no customers; add one or set seconds = N "
                        "for the vendors to serve")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    vendors = [spec.build() for spec in plan.vendors]
    customers = [spec.build() for spec in plan.customers]
    try:
        endpoints: list[Uas | Uac] = [*vendors, *customers]
        for endpoint in endpoints:
            await endpoint.start()
        if on_started is not None:
            on_started(vendors, customers)

        async def customer(spec: CustomerSpec, uac: Uac) -> None:
            if spec.start_delay > 0:
                await asyncio.sleep(spec.start_delay)
            await uac.run()

        stop = stop or asyncio.Event()

        async def serve(seconds: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

        async def watch() -> None:
            await stop.wait()
            for uac in customers:
                uac.stop()

        watcher = asyncio.create_task(watch())
        jobs = [customer(spec, uac) for spec, uac in zip(plan.customers, customers, strict=True)]
        if plan.seconds is not None:
            jobs.append(serve(plan.seconds))
        try:
            await asyncio.gather(*jobs)
        finally:
            watcher.cancel()
        if plan.drain_seconds > 0:
            await asyncio.sleep(plan.drain_seconds)
    finally:
        closing: list[Uas | Uac] = [*customers, *vendors]
        for endpoint in closing:
            endpoint.close()
    return PlanResult({v.stats.name: v.stats for v in vendors},
                      {c.name: c.summary() for c in customers}, loop.time() - t0)


def run_plan_sync(plan: LoadPlan) -> PlanResult:
    """:func:`run_plan` in a fresh event loop (``asyncio.run``)."""
    return asyncio.run(run_plan(plan))


# --- reading plans ----------------------------------------------------------------------------


def load_plan(path: str | Path) -> LoadPlan:
    """Read a TOML plan file; PlanError for anything wrong (file, syntax or content)."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as err:
        raise PlanError(f"{path}: cannot read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise PlanError(f"{path}: not valid TOML: {err}") from None
    try:
        return plan_from_dict(data)
    except PlanError as err:
        raise PlanError(f"{path}: {err}") from None


def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _entry(where: str, cls: type, raw: object, convert: Callable[[str, Any], Any]) -> Any:
    if not isinstance(raw, Mapping):
        raise PlanError(f"{where}: expected a table ([[...]] section)")
    name = raw.get("name")
    label = f"{where} ({name})" if name else where
    if not isinstance(name, str) or not name:
        raise PlanError(f"{where}: missing name; give each entry name = \"...\"")
    allowed = _fields(cls)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in allowed:
            raise PlanError(f"{label}: unknown key {key!r}; allowed: {', '.join(allowed)}")
        try:
            values[key] = convert(key, value)
        except (MixError, ValueError, TypeError) as err:
            raise PlanError(f"{label}: {key}: {err}") from None
    return cls(**values)


def _vendor_value(key: str, value: Any) -> Any:
    if key == "mix":
        if isinstance(value, str):
            return BehaviourMix.parse(value)
        if not isinstance(value, Mapping):
            raise ValueError("use a table, e.g. mix = {answer = 0.9, refuse = {486 = 0.1}}")
        return BehaviourMix.from_mapping(value)
    if key == "require_auth":
        if not (isinstance(value, list) and len(value) == 2
                and all(isinstance(v, str) for v in value)):
            raise ValueError('use ["username", "password"]')
        return (value[0], value[1])
    return _scalar(key, value, VendorSpec)


def _customer_value(key: str, value: Any) -> Any:
    if key == "target":
        return parse_hostport(str(value))
    if key == "durations":
        if isinstance(value, str):
            return DurationMix.parse(value)
        return DurationMix.from_mapping(value)
    if key == "numbers":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError('use a list of prefixes, e.g. ["4477009", "3460"]')
        NumberSource(value)  # validates
        return [str(v) for v in value]
    return _scalar(key, value, CustomerSpec)


_INTS = frozenset({"port", "seed", "calls", "digits", "local_port"})
_FLOATS = frozenset({"ring_seconds", "answer_delay", "rate", "cancel_after", "cancel_ratio",
                     "max_seconds", "answer_timeout", "start_delay"})


def _scalar(key: str, value: Any, cls: type) -> Any:
    if key in _INTS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{value!r}; use a whole number >= 0")
        return value
    if key in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{value!r}; use a number >= 0")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string; quote it")
    return value


def plan_from_dict(data: Mapping[str, Any]) -> LoadPlan:
    """Build a plan from parsed TOML: ``vendors`` and ``customers`` arrays of tables plus
    optional ``drain_seconds`` and ``seconds``."""
    allowed = ("vendors", "customers", "drain_seconds", "seconds")
    for key in data:
        if key not in allowed:
            raise PlanError(f"unknown top-level key {key!r}; allowed: {', '.join(allowed)}")
    vendors = [_entry(f"vendors[{i}]", VendorSpec, raw, _vendor_value)
               for i, raw in enumerate(_array(data, "vendors"))]
    customers = [_entry(f"customers[{i}]", CustomerSpec, raw, _customer_value)
                 for i, raw in enumerate(_array(data, "customers"))]
    for kind, specs in (("vendors", vendors), ("customers", customers)):
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise PlanError(f"{kind}: name {dupes[0]!r} used twice; names must be unique")
    plan = LoadPlan(vendors, customers)
    for key in ("drain_seconds", "seconds"):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise PlanError(f"{key}: {value!r}; use a number of seconds >= 0")
            setattr(plan, key, float(value))
    return plan


def _array(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise PlanError(f"{key}: expected an array of tables, written [[{key}]]")
    return value

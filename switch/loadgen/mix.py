"""Proportions for the load generator: vendor behaviour mixes, call-duration mixes, numbers.

Everything here is pure and seeded: a mix picks with the ``random.Random`` it is handed, so a
run with the same seed makes the same choices. Mixes are written either as mappings (TOML, the
Python API) or as short command-line strings; every malformed input raises :class:`MixError`
whose message says how to fix it.

>>> mix = BehaviourMix.parse("answer=0.7,ring=0.1,486=0.1,503=0.05,no_answer=0.05")
>>> mix.refuse
{486: 0.1, 503: 0.05}
>>> durations = DurationMix.parse("2:0.5,5:0.3,20:0.2")
>>> durations.pick(random.Random(1)) in (2.0, 5.0, 20.0)
True
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "BEHAVIOURS",
    "Behaviour",
    "BehaviourMix",
    "DurationMix",
    "MixError",
    "NumberSource",
    "parse_pairs",
]

#: Behaviour names a vendor mix may use besides refusal codes.
#: ``answer`` 200 at once; ``ring`` 180 then 200 after ``ring_seconds``; ``no_answer`` 180 and
#: never a final response; ``silent`` no response at all (the caller's Timer B fires).
BEHAVIOURS = ("answer", "ring", "no_answer", "silent")

_EPSILON = 1e-9

T = TypeVar("T")


class MixError(ValueError):
    """A mix, number list or proportion that cannot be used; the message says what to do.

    >>> str(MixError("x"))
    'x'
    """


def parse_pairs(text: str, what: str) -> dict[str, float]:
    """``"a=0.5,b=0.2"`` (``:`` works as well as ``=``) -> ``{"a": 0.5, "b": 0.2}``.

    >>> parse_pairs("answer=0.5, 486:0.25", "mix")
    {'answer': 0.5, '486': 0.25}
    >>> parse_pairs("answer", "mix")
    Traceback (most recent call last):
    ...
    switch.loadgen.mix.MixError: mix: 'answer' is not NAME=PROPORTION (e.g. answer=0.7,486=0.3)
    """
    out: dict[str, float] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        sep = "=" if "=" in item else ":"
        name, found, value = item.partition(sep)
        if not found:
            raise MixError(f"{what}: {item!r} is not NAME=PROPORTION (e.g. answer=0.7,486=0.3)")
        name = name.strip()
        if name in out:
            raise MixError(f"{what}: {name!r} appears twice; give each entry once")
        out[name] = _proportion(value.strip(), f"{what}: {name}")
    return out


def _proportion(value: object, where: str) -> float:
    try:
        # Any value may come in (TOML, keyword arguments): float() raising is the check.
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MixError(
            f"{where}: {value!r} is not a number; use a proportion such as 0.25") from None
    if not 0.0 <= number <= 1.0:
        raise MixError(f"{where}: proportion {number} is outside 0..1; use e.g. 0.25 for 25%")
    return number


def _check_sum(total: float, what: str) -> None:
    if total > 1.0 + _EPSILON:
        raise MixError(
            f"{what}: proportions sum to {total:g}; they must sum to <= 1 "
            "(the remainder is answered)")


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One vendor decision: a kind from :data:`BEHAVIOURS` or ``"refuse"`` with its code.

    >>> Behaviour("refuse", 486)
    Behaviour(kind='refuse', code=486)
    """

    kind: str
    code: int = 0


@dataclass(frozen=True)
class BehaviourMix:
    """How a vendor answers INVITEs; the part the proportions leave over is ``answer``.

    >>> m = BehaviourMix.from_mapping({"ring": 0.5, "refuse": {"486": 0.5}})
    >>> m.answer, m.ring, m.refuse
    (0.0, 0.5, {486: 0.5})
    >>> BehaviourMix.parse("answer=0.8,ring=0.4")
    Traceback (most recent call last):
    ...
    switch.loadgen.mix.MixError: mix: proportions sum to 1.2; they must sum to <= 1 \
(the remainder is answered)
    """

    answer: float = 1.0
    ring: float = 0.0
    no_answer: float = 0.0
    silent: float = 0.0
    refuse: dict[int, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> BehaviourMix:
        """Read the command-line form ``answer=0.7,ring=0.1,486=0.1,no_answer=0.1``."""
        return cls.from_mapping(parse_pairs(text, "mix"))

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> BehaviourMix:
        """Read ``{answer, ring, no_answer, silent, refuse: {code: p}}``; codes may also be
        top-level keys (``{"486": 0.1}``)."""
        named: dict[str, float] = {}
        refuse: dict[int, float] = {}
        for key, value in data.items():
            key = str(key)
            if key == "refuse":
                if not isinstance(value, Mapping):
                    raise MixError("mix: refuse must map status codes to proportions, "
                                   "e.g. refuse = {486 = 0.1, 503 = 0.05}")
                for code, share in value.items():
                    refuse[_code(code)] = refuse.get(_code(code), 0.0) + _proportion(
                        share, f"mix: refuse {code}")
            elif key in BEHAVIOURS:
                named[key] = _proportion(value, f"mix: {key}")
            elif key.isdigit():
                refuse[_code(key)] = _proportion(value, f"mix: {key}")
            else:
                raise MixError(f"mix: unknown behaviour {key!r}; use one of "
                               f"{', '.join(BEHAVIOURS)} or a status code 300-699")
        others = sum(v for k, v in named.items() if k != "answer") + sum(refuse.values())
        if "answer" in named:
            _check_sum(others + named["answer"], "mix")
            answer = named["answer"]
        else:
            _check_sum(others, "mix")
            answer = max(0.0, 1.0 - others)
        return cls(answer=answer, ring=named.get("ring", 0.0),
                   no_answer=named.get("no_answer", 0.0), silent=named.get("silent", 0.0),
                   refuse=dict(sorted(refuse.items())))

    def weights(self) -> list[tuple[Behaviour, float]]:
        """Every behaviour with its share; the shares left over by the others go to answer.

        >>> BehaviourMix(answer=0.5, refuse={486: 0.2}).weights()[0]
        (Behaviour(kind='answer', code=0), 0.8)
        """
        others = self.ring + self.no_answer + self.silent + sum(self.refuse.values())
        out = [(Behaviour("answer"), max(self.answer, 1.0 - others)),
               (Behaviour("ring"), self.ring), (Behaviour("no_answer"), self.no_answer),
               (Behaviour("silent"), self.silent)]
        out += [(Behaviour("refuse", code), share) for code, share in self.refuse.items()]
        return [(b, w) for b, w in out if w > 0]

    def pick(self, rng: random.Random) -> Behaviour:
        """One behaviour, drawn with ``rng``.

        >>> BehaviourMix(answer=0.0, refuse={503: 1.0}).pick(random.Random(0))
        Behaviour(kind='refuse', code=503)
        """
        return _pick(self.weights(), rng)

    def describe(self) -> str:
        """Short text for summaries.

        >>> BehaviourMix(answer=0.9, refuse={486: 0.1}).describe()
        'answer=0.9,486=0.1'
        """
        return ",".join(f"{b.code if b.kind == 'refuse' else b.kind}={w:g}"
                        for b, w in self.weights())


def _code(value: object) -> int:
    text = str(value).strip()
    if not (text.isdigit() and 300 <= int(text) <= 699):
        raise MixError(f"mix: {value!r} is not a final refusal code; use 300-699 (e.g. 486)")
    return int(text)


def _pick(weights: Sequence[tuple[T, float]], rng: random.Random) -> T:
    total = sum(w for _, w in weights)
    point = rng.random() * total
    for item, weight in weights:
        point -= weight
        if point < 0:
            return item
    return weights[-1][0]


@dataclass(frozen=True)
class DurationMix:
    """Call durations in seconds with their proportions (which must sum to 1).

    >>> DurationMix.parse("3").choices
    ((3.0, 1.0),)
    >>> DurationMix.from_mapping({2: 0.5, 5: 0.3})
    Traceback (most recent call last):
    ...
    switch.loadgen.mix.MixError: durations: proportions sum to 0.8; they must sum to 1 \
(e.g. 2:0.5,5:0.5)
    """

    choices: tuple[tuple[float, float], ...] = ((1.0, 1.0),)

    @classmethod
    def parse(cls, text: str) -> DurationMix:
        """``"2:0.5,5:0.3,20:0.2"`` or a single number of seconds (``"3"``)."""
        text = text.strip()
        if text and ":" not in text and "=" not in text:
            return cls.from_mapping({text: 1.0})
        return cls.from_mapping(parse_pairs(text, "durations"))

    @classmethod
    def from_mapping(cls, data: Mapping[Any, object] | float | int) -> DurationMix:
        # Keys are Any: str from text and TOML, numbers from Python; float() below checks them.
        """``{seconds: proportion}``; a plain number means every call lasts that long."""
        if isinstance(data, int | float):
            data = {data: 1.0}
        if not data:
            raise MixError("durations: empty; give at least one, e.g. 2:1")
        choices: list[tuple[float, float]] = []
        for seconds, share in data.items():
            try:
                value = float(seconds)
            except (TypeError, ValueError):
                raise MixError(f"durations: {seconds!r} is not a number of seconds") from None
            if value < 0:
                raise MixError(f"durations: {value:g} s is negative; use 0 or more")
            choices.append((value, _proportion(share, f"durations: {seconds}")))
        total = sum(w for _, w in choices)
        if abs(total - 1.0) > 1e-6:
            raise MixError(f"durations: proportions sum to {total:g}; they must sum to 1 "
                           "(e.g. 2:0.5,5:0.5)")
        return cls(tuple(choices))

    def pick(self, rng: random.Random) -> float:
        """One duration in seconds."""
        return _pick(self.choices, rng)


@dataclass(frozen=True)
class NumberSource:
    """Called numbers: a prefix from ``prefixes`` followed by ``digits`` random digits.

    >>> src = NumberSource(["4477009"], digits=5)
    >>> n = src.pick(random.Random(3)); n.startswith("4477009"), len(n)
    (True, 12)
    >>> NumberSource([])
    Traceback (most recent call last):
    ...
    switch.loadgen.mix.MixError: numbers: no prefixes; give at least one, e.g. 4477009
    """

    prefixes: Sequence[str]
    digits: int = 5

    def __post_init__(self) -> None:
        if not self.prefixes:
            raise MixError("numbers: no prefixes; give at least one, e.g. 4477009")
        for prefix in self.prefixes:
            if not isinstance(prefix, str) or not prefix.isdigit():
                raise MixError(f"numbers: {prefix!r} is not a digit string; use e.g. 4477009")
        if not 0 <= self.digits <= 15:
            raise MixError(f"numbers: digits={self.digits}; use 0..15 random digits")

    def pick(self, rng: random.Random) -> str:
        """One number."""
        prefix = self.prefixes[rng.randrange(len(self.prefixes))]
        tail = "".join(str(rng.randrange(10)) for _ in range(self.digits))
        return prefix + tail

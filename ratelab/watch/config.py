"""The watch's thresholds: :class:`WatchConfig`, each field with a default (docs/watch.md).

>>> WatchConfig().weeks, WatchConfig().loss_days
(4, (1, 7, 30))
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["WatchConfig"]


@dataclass(frozen=True)
class WatchConfig:
    """Documented thresholds of the watch (docs/watch.md, "Thresholds"). Ratios are fractions
    (0.2 = 20 points); money is in the base currency.

    >>> WatchConfig(spike_factor=5).spike_factor
    5.0
    >>> try:
    ...     WatchConfig(weeks=0)
    ... except ValueError as err:
    ...     print(err)
    weeks: must be at least 1, got 0
    """

    #: weeks of history each hour is compared with (the same hour of the week in each)
    weeks: int = 4
    #: the most hours before the current one a run looks at (first run, or a long pause)
    catch_up_hours: int = 24
    #: traffic spike: calls in the hour at least this many ...
    spike_min_calls: int = 30
    #: ... and at least this many times the average at the same hour of the week
    spike_factor: float = 3.0
    #: a spike is critical at this many times the average (else a warning)
    spike_critical_factor: float = 10.0
    #: new destination: not called by the customer in this many days before
    new_destination_days: int = 90
    #: new destination: calls in the hour needed to raise it
    new_destination_min_calls: int = 1
    #: a new destination is a warning from this many calls in the hour (else info)
    new_destination_warning_calls: int = 20
    #: ASR drop: calls needed in the hour and in the history
    ratio_min_calls: int = 20
    #: ACD drop and short-call rise: answered calls needed in the hour and in the history
    ratio_min_answered: int = 10
    #: ASR drop: points below the history's ASR (0.2 = 20 points); critical at twice it
    asr_drop: float = 0.2
    #: ACD drop: fraction below the history's ACD (0.5 = half); critical at (1-x)^2 of it
    acd_drop: float = 0.5
    #: short calls (answered, < 10 s): share rise in points; critical at twice it
    short_call_rise: float = 0.25
    #: night: first local hour (0-23) that is night
    night_start: int = 0
    #: night: first local hour after the night (0-24); night_start > night_end wraps midnight
    night_end: int = 6
    #: night: the IANA time zone the night hours are local to
    night_time_zone: str = "UTC"
    #: night burst: calls in the hour at least this many ...
    night_min_calls: int = 10
    #: ... and at least this many times the average at the same hour of the week
    night_factor: float = 2.0
    #: night burst is critical at this many times the average (else a warning)
    night_critical_factor: float = 5.0
    #: high-risk range: critical from this many calls in the hour (else a warning)
    high_risk_critical_calls: int = 5
    #: loss makers: the trailing periods, in days
    loss_days: tuple[int, ...] = (1, 7, 30)
    #: loss makers: a loss below this is info, from it a warning
    loss_warning: Decimal = Decimal("1")
    #: loss makers: critical from this loss
    loss_critical: Decimal = Decimal("100")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            try:
                object.__setattr__(self, f.name, _coerce(f.name, f.type, value))
            except (TypeError, ValueError, InvalidOperation) as exc:
                raise ValueError(f"{f.name}: {exc}") from None
        self._check()

    def _check(self) -> None:
        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ValueError(f"{name}: {what}, got {getattr(self, name)!r}")

        for name in ("weeks", "catch_up_hours", "spike_min_calls", "new_destination_days",
                     "new_destination_min_calls", "new_destination_warning_calls",
                     "ratio_min_calls", "ratio_min_answered", "night_min_calls",
                     "high_risk_critical_calls"):
            need(getattr(self, name) >= 1, name, "must be at least 1")
        for name in ("spike_factor", "spike_critical_factor", "night_factor",
                     "night_critical_factor"):
            need(getattr(self, name) > 0, name, "must be above 0")
        for name in ("asr_drop", "acd_drop", "short_call_rise"):
            need(0 < getattr(self, name) <= 1, name, "must be above 0 and at most 1")
        need(0 <= self.night_start <= 23, "night_start", "must be an hour 0-23")
        need(0 <= self.night_end <= 24, "night_end", "must be an hour 0-24")
        need(self.night_start != self.night_end, "night_end", "must differ from night_start")
        try:
            ZoneInfo(self.night_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"night_time_zone: not an IANA time zone, got "
                             f"{self.night_time_zone!r}") from None
        need(bool(self.loss_days) and all(d >= 1 for d in self.loss_days), "loss_days",
             "must be whole days, at least 1")
        need(self.loss_warning >= 0, "loss_warning", "must be 0 or more")
        need(self.loss_critical >= self.loss_warning, "loss_critical",
             "must be at least loss_warning")

    def is_night(self, local_hour: int) -> bool:
        """Whether the local hour (0-23) is night.

        >>> WatchConfig(night_start=22, night_end=5).is_night(23)
        True
        """
        if self.night_start < self.night_end:
            return self.night_start <= local_hour < self.night_end
        return local_hour >= self.night_start or local_hour < self.night_end

    @classmethod
    def from_toml(cls, path: str | Path) -> WatchConfig:
        """Read thresholds from a TOML file: top-level keys, or a ``[watch]`` table. Keys not
        given keep their defaults. Unknown keys and bad values raise ValueError naming the file
        and the key.

        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "watch.toml")
        >>> _ = open(path, "w").write('[watch]\\nweeks = 6\\nloss_critical = "250.00"\\n')
        >>> config = WatchConfig.from_toml(path)
        >>> config.weeks, config.loss_critical
        (6, Decimal('250.00'))
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from None
        table: Any = data.get("watch", data) if set(data) <= {"watch"} else data
        if not isinstance(table, dict):
            raise ValueError(f"{path}: [watch] must be a table")
        known = {f.name for f in fields(cls)}
        for key in table:
            if key not in known:
                raise ValueError(f"{path}: unknown key {key!r}; known keys: "
                                 + ", ".join(sorted(known)))
        for key, value in table.items():
            if isinstance(value, float) and key in ("loss_warning", "loss_critical"):
                raise ValueError(f"{path}: {key}: give money as a string (\"100.00\"), "
                                 "not a float")
            try:
                cls(**{key: value})
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
        try:
            return cls(**table)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


def _coerce(name: str, kind: Any, value: Any) -> Any:
    """The field's value in its type; bool is refused for numbers (TOML true is not 1)."""
    kind = str(kind)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"must be a whole number, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"must be a number, got {value!r}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise TypeError(f"must be text, got {value!r}")
        return value
    if kind == "Decimal":
        if isinstance(value, bool | float) or not isinstance(value, int | str | Decimal):
            raise TypeError(f"must be a decimal number as text, got {value!r}")
        result = Decimal(value)
        if not result.is_finite():
            raise ValueError(f"must be a finite number, got {value!r}")
        return result
    if kind == "tuple[int, ...]":
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            raise TypeError(f"must be a list of whole numbers, got {value!r}")
        items = tuple(value)
        if any(isinstance(v, bool) or not isinstance(v, int) for v in items):
            raise TypeError(f"must be a list of whole numbers, got {value!r}")
        return items
    raise TypeError(f"{name}: unexpected field type {kind}")  # a new field needs a case here

"""Column mapping for rate decks: canonical column names and the vendor spellings of each.

Vendors name their columns in many ways. A header is first *normalised* (see
:func:`normalise_header`): lower-cased, unit suffixes in brackets such as ``(USD/min)``,
``($)`` or ``[sec]`` removed, and spaces, underscores and hyphens dropped, so
``"Dial Code"``, ``"dial_code"``, ``"DIAL-CODE"`` and ``"DialCode"`` are all the same
header. The normalised header is then looked up in the table below. Headers that match
nothing are ignored.

================  ========  ==========================================================
Canonical name    Required  Vendor spellings (any case; spaces, ``_`` and ``-`` ignored)
================  ========  ==========================================================
prefix            yes       prefix, code, dial code, dialcode, dial_code, dialing code,
                            area code
destination       no        destination, country, description, name, zone, route
band              no        band, time band, period, time period
first_rate        no        first rate, first_rate, initial rate, first time rate
first_period      no        first period, first_period, initial period, min duration,
                            minimum
rate              yes       rate, price, rate per minute, rate/min, per minute, cost,
                            new rate
cycle             no        cycle, increment seconds, next period, billing cycle
increment         no        increment, billing increment, interval, billing, pulse
connect_fee       no        connect fee, connection fee, setup fee, connect_fee
effective_from    no        effective from, effective_from, effective date, effective,
                            valid from, start date, date
effective_to      no        effective to, effective_to, end date, expiry, expires,
                            valid to, valid until
================  ========  ==========================================================

Defaults when a column is absent: ``first_rate`` = ``rate``; the increment comes from the
``increment`` column (``"60/60"``, ``"30/6"``, ``"60 / 60"``, ``"60-60"``; a bare ``"6"``
means ``6/6``), else from the ``first_period``/``cycle`` columns, else from
``read_deck(default_increment=...)``; ``band`` = ``any``; ``connect_fee`` = 0;
``effective_from`` = ``read_deck(effective_from=...)``; ``effective_to`` = open ended.

``read_deck(columns=...)`` overrides or extends the table: it maps a source header
(matched after normalisation) to a canonical name, or to ``""`` to ignore that column.
A canonical name chosen by an override is no longer filled from the table, so
``columns={"New Rate": "rate"}`` also makes a plain ``Rate`` column be ignored.

If two headers of one deck map to the same canonical name, the deck is rejected (pass
``columns=`` to choose), except for ``destination``, where the spelling listed first in
the table wins (``Country`` before ``Description``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "CANONICAL_COLUMNS",
    "COLUMN_ALIASES",
    "REQUIRED_COLUMNS",
    "canonical_column",
    "normalise_header",
]

CANONICAL_COLUMNS: tuple[str, ...] = (
    "prefix",
    "destination",
    "band",
    "first_rate",
    "first_period",
    "rate",
    "cycle",
    "increment",
    "connect_fee",
    "effective_from",
    "effective_to",
)

REQUIRED_COLUMNS: tuple[str, ...] = ("prefix", "rate")

#: Vendor spellings per canonical column, in priority order (as written in the table above).
COLUMN_ALIASES: Mapping[str, tuple[str, ...]] = {
    "prefix": (
        "prefix", "code", "dial code", "dialcode", "dial_code", "dialing code", "area code",
    ),
    "destination": ("destination", "country", "description", "name", "zone", "route"),
    "band": ("band", "time band", "period", "time period"),
    "first_rate": ("first rate", "first_rate", "initial rate", "first time rate"),
    "first_period": ("first period", "first_period", "initial period", "min duration", "minimum"),
    "rate": (
        "rate", "price", "rate per minute", "rate/min", "per minute", "cost", "new rate",
    ),
    "cycle": ("cycle", "increment seconds", "next period", "billing cycle"),
    "increment": ("increment", "billing increment", "interval", "billing", "pulse"),
    "connect_fee": ("connect fee", "connection fee", "setup fee", "connect_fee"),
    "effective_from": (
        "effective from", "effective_from", "effective date", "effective", "valid from",
        "start date", "date",
    ),
    "effective_to": (
        "effective to", "effective_to", "end date", "expiry", "expires", "valid to",
        "valid until",
    ),
}

_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|\{[^{}]*\}")
_IGNORED_CHARS = re.compile(r"[\s_\-]+")


def normalise_header(name: str) -> str:
    """Return the lookup key of a column header.

    Lower-cases, removes bracketed unit suffixes like ``(USD/min)`` or ``($)``, a byte
    order mark, surrounding quotes and a trailing colon, and drops spaces, underscores
    and hyphens.

    >>> normalise_header("Rate (USD/min)")
    'rate'
    >>> normalise_header(" Dial_Code ") == normalise_header("dial-code") == "dialcode"
    True
    >>> normalise_header("Rate / Min")
    'rate/min'
    """
    text = name.replace("\ufeff", "").strip().strip("\"'").strip()
    text = _BRACKETED.sub(" ", text).strip().rstrip(":").casefold()
    return _IGNORED_CHARS.sub("", text)


_LOOKUP: dict[str, str] = {
    normalise_header(alias): canonical
    for canonical, aliases in COLUMN_ALIASES.items()
    for alias in aliases
}
_PRIORITY: dict[str, int] = {
    normalise_header(alias): rank
    for aliases in COLUMN_ALIASES.values()
    for rank, alias in enumerate(aliases)
}


def alias_priority(header: str) -> int:
    """Rank of ``header`` within its column's spellings (0 = listed first); large if unknown.

    >>> alias_priority("Country") < alias_priority("Description")
    True
    """
    return _PRIORITY.get(normalise_header(header), len(_PRIORITY))


def _normalise_overrides(overrides: Mapping[str, str] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for source, target in (overrides or {}).items():
        if target and target not in CANONICAL_COLUMNS:
            raise ValueError(
                f"columns override {source!r} -> {target!r}: target must be one of "
                f"{', '.join(CANONICAL_COLUMNS)} (or '' to ignore the column)"
            )
        result[normalise_header(source)] = target
    return result


def canonical_column(header: str, overrides: Mapping[str, str] | None = None) -> str | None:
    """Return the canonical column name for a deck header, or ``None`` if it is not mapped.

    ``overrides`` maps source headers (normalised the same way) to canonical names; it is
    consulted first, and a value of ``""`` ignores the header. An override naming
    something that is not a canonical column raises :class:`ValueError`.

    >>> canonical_column("Dial Code")
    'prefix'
    >>> canonical_column("Rate (USD/min)")
    'rate'
    >>> canonical_column("Tariff") is None
    True
    >>> canonical_column("Tariff", {"tariff": "rate"})
    'rate'
    >>> canonical_column("Date", {"Date": ""}) is None
    True
    """
    key = normalise_header(header)
    normalised = _normalise_overrides(overrides)
    if key in normalised:
        return normalised[key] or None
    return _LOOKUP.get(key)


def map_headers(
    headers: list[str], overrides: Mapping[str, str] | None = None
) -> tuple[dict[str, int], dict[str, str]]:
    """Map header cells to canonical names: ``({canonical: column index}, {canonical: problem})``.

    The problems are ambiguities (several headers for one canonical name, which is then
    left out of the mapping); see the module docstring for the rules.

    >>> map_headers(["Code", "Country", "Description", "Price", "Notes"])
    ({'prefix': 0, 'destination': 1, 'rate': 3}, {})
    >>> map_headers(["Code", "Rate", "New Rate"])[1]
    {'rate': "columns 'Rate' and 'New Rate' both map to rate; pass columns= to choose one"}
    >>> map_headers(["Code", "Rate", "New Rate"], {"New Rate": "rate"})
    ({'prefix': 0, 'rate': 2}, {})
    """
    normalised = _normalise_overrides(overrides)
    forced = {target for target in normalised.values() if target}
    candidates: dict[str, list[int]] = {}
    for index, header in enumerate(headers):
        key = normalise_header(header)
        if not key:
            continue
        if key in normalised:
            target: str | None = normalised[key] or None
        else:
            target = _LOOKUP.get(key)
            if target in forced:
                target = None
        if target is not None:
            candidates.setdefault(target, []).append(index)

    mapping: dict[str, int] = {}
    problems: dict[str, str] = {}
    for canonical in CANONICAL_COLUMNS:
        indexes = candidates.get(canonical)
        if not indexes:
            continue
        if len(indexes) > 1 and canonical == "destination":
            indexes = [min(indexes, key=lambda i: alias_priority(headers[i]))]
        if len(indexes) > 1:
            names = " and ".join(repr(headers[i].strip()) for i in indexes)
            both = "both" if len(indexes) == 2 else "all"
            problems[canonical] = (
                f"columns {names} {both} map to {canonical}; pass columns= to choose one"
            )
            continue
        mapping[canonical] = indexes[0]
    return mapping, problems

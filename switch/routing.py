"""Route planning: which vendors to try for a call, in which order, and why others were not.

Pure functions over the configuration and the routing snapshot (``ratelab routing export``),
so every routing rule is tested without a network. For a number (tech prefix already stripped):

1. the routing gateways whose ``prefixes`` match, longest matching prefix first, then by
   ``priority`` (lower first), then by the cheapest vendor rate from the snapshot
   (:func:`switch.contract.route_order`, shared with ratelab's leak check);
2. skipping a vendor that is marked down (stopped after an INVITE timeout), that has no rate
   for the number, or whose margin per second is below its ``lowest_profit_per_second``
   (customer rate/s - vendor rate/s < limit; the limit may be negative).

A number the customer has no rate for is not routed: the call could not be billed.

The longest-prefix lookup (:class:`PrefixTable`, :func:`longest_match`) and the snapshot's
format and version live in :mod:`switch.contract`, shared with ratelab; they are re-exported
here for the code that imported them from this module.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from switch.config import RoutingGateway
from switch.contract import (
    SNAPSHOT_FORMAT,
    SNAPSHOT_VERSION,
    DisconnectReason,
    PrefixTable,
    longest_match,
    route_order,
)

__all__ = [
    "Candidate",
    "GatewayTable",
    "PrefixTable",
    "RoutePlan",
    "RoutingSnapshot",
    "SnapshotError",
    "load_snapshot",
    "longest_match",
    "parse_snapshot",
    "plan_route",
]

_SECONDS = Decimal(60)


class SnapshotError(ValueError):
    """The routing snapshot cannot be used (the switch keeps the one it has)."""


@dataclass(frozen=True)
class RoutingSnapshot:
    """Per-minute rates per prefix for customers and vendors, in force at ``rates_at``."""

    rates_at: str
    customers: Mapping[str, PrefixTable[Decimal]]
    vendors: Mapping[str, PrefixTable[Decimal]]


def parse_snapshot(data: Mapping[str, Any]) -> RoutingSnapshot:
    """Validate a decoded snapshot (format ``ratelab-routing`` version 1).

    >>> snap = parse_snapshot({"format": "ratelab-routing", "version": 1, "rates_at": "t",
    ...                        "customers": {"acme": {"44": "0.02"}}, "vendors": {}})
    >>> snap.customers["acme"]["44"]
    Decimal('0.02')
    """
    if data.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"not a ratelab routing snapshot (format must be {SNAPSHOT_FORMAT!r})")
    if data.get("version") != SNAPSHOT_VERSION:
        raise SnapshotError(f"snapshot version {data.get('version')!r} is not supported "
                            f"({SNAPSHOT_VERSION} is)")

    def book(key: str) -> dict[str, PrefixTable[Decimal]]:
        parties = data.get(key)
        if not isinstance(parties, dict):
            raise SnapshotError(f"{key} must be an object")
        out: dict[str, PrefixTable[Decimal]] = {}
        for party, rates in parties.items():
            if not isinstance(rates, dict):
                raise SnapshotError(f"{key}.{party} must be an object of prefix: rate")
            table: dict[str, Decimal] = {}
            for prefix, rate in rates.items():
                try:
                    value = Decimal(rate) if isinstance(rate, str) else None
                except InvalidOperation:
                    value = None
                # ASCII digits only: normalize_number keeps no other kind, so no call could match
                if not (prefix.isascii() and prefix.isdigit()) or value is None \
                        or not value.is_finite() or value < 0:
                    raise SnapshotError(f"{key}.{party}.{prefix}: bad prefix or rate {rate!r}")
                table[prefix] = value
            out[party] = PrefixTable(table)
        return out

    return RoutingSnapshot(str(data.get("rates_at", "")), book("customers"), book("vendors"))


def load_snapshot(path: str | Path) -> RoutingSnapshot:
    """Read and validate the snapshot file (see :func:`parse_snapshot`).

    >>> load_snapshot("/nonexistent/routing.json")
    Traceback (most recent call last):
    ...
    switch.routing.SnapshotError: cannot read routing snapshot /nonexistent/routing.json: ...
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SnapshotError(f"cannot read routing snapshot {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"routing snapshot {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SnapshotError(f"routing snapshot {path} must hold a JSON object")
    return parse_snapshot(data)


@dataclass(frozen=True)
class Candidate:
    """A vendor to try, with what it matched and what it costs."""

    gateway: RoutingGateway
    gateway_prefix: str
    vendor_prefix: str
    vendor_rate: Decimal


class GatewayTable:
    """The routing gateways with their prefix tables, built once per configuration (not per
    call); :func:`plan_route` takes it in place of a list of gateways.

    >>> from switch.config import RoutingGateway
    >>> table = GatewayTable([RoutingGateway("v1", "127.0.0.1:5070", ("44", "1"))])
    >>> [(gw.name, prefixes.longest("447700")) for gw, prefixes in table]
    [('v1', ('44', True))]
    """

    __slots__ = ("_items",)

    def __init__(self, gateways: Iterable[RoutingGateway]) -> None:
        self._items: tuple[tuple[RoutingGateway, PrefixTable[bool]], ...] = tuple(
            (gw, PrefixTable(dict.fromkeys(gw.prefixes, True))) for gw in gateways)

    def __iter__(self) -> Iterator[tuple[RoutingGateway, PrefixTable[bool]]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class RoutePlan:
    """Vendors in the order to try them, and the ones left out with the reason."""

    customer_rate: Decimal | None
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (vendor, reason)

    @property
    def failure(self) -> tuple[int, DisconnectReason] | None:
        """When nothing can be tried: the SIP code for the caller and the CDR reason.

        404 ``no_route`` when no vendor takes the number at a known price; 503 ``profit_limit``
        when vendors were left out for margin only; 503 ``no_route`` when they are down.
        """
        if self.candidates:
            return None
        reasons = {reason for _, reason in self.skipped}
        if reasons and reasons <= {"profit_limit"}:
            return 503, DisconnectReason.PROFIT_LIMIT
        if "down" in reasons:
            return 503, DisconnectReason.NO_ROUTE
        return 404, DisconnectReason.NO_ROUTE


def plan_route(
    number: str,
    customer: str,
    gateways: GatewayTable | Iterable[RoutingGateway],
    snapshot: RoutingSnapshot,
    *,
    down: Collection[str] = (),
) -> RoutePlan:
    """Plan the vendor attempts for a call from ``customer`` to ``number``.

    ``gateways`` is best a :class:`GatewayTable` built once per configuration; a plain list is
    indexed on each call.

    >>> from switch.config import RoutingGateway
    >>> snap = parse_snapshot({"format": "ratelab-routing", "version": 1, "rates_at": "t",
    ...     "customers": {"acme": {"44": "0.0300"}},
    ...     "vendors": {"cheap": {"44": "0.0100"}, "dear": {"44": "0.0290"}}})
    >>> gws = [RoutingGateway("dear", "127.0.0.1:5071", ("44",), lowest_profit_per_second="0"),
    ...        RoutingGateway("cheap", "127.0.0.1:5070", ("44",))]
    >>> [c.gateway.name for c in plan_route("447700900001", "acme", gws, snap).candidates]
    ['cheap', 'dear']
    """
    table = gateways if isinstance(gateways, GatewayTable) else GatewayTable(gateways)
    customer_hit = longest_match(number, snapshot.customers.get(customer, {}))
    plan = RoutePlan(customer_hit[1] if customer_hit else None)
    ranked: list[tuple[tuple[int, int, Decimal, str], Candidate]] = []
    for gateway, prefixes in table:
        gw_hit = prefixes.longest(number)
        if gw_hit is None:
            continue
        if gateway.name in down:
            plan.skipped.append((gateway.name, "down"))
            continue
        vendor_hit = longest_match(number, snapshot.vendors.get(gateway.name, {}))
        if vendor_hit is None:
            plan.skipped.append((gateway.name, "no_vendor_rate"))
            continue
        if plan.customer_rate is None:
            plan.skipped.append((gateway.name, "no_customer_rate"))
            continue
        margin_per_minute = plan.customer_rate - vendor_hit[1]
        if margin_per_minute < Decimal(gateway.lowest_profit_per_second) * _SECONDS:
            plan.skipped.append((gateway.name, "profit_limit"))
            continue
        candidate = Candidate(gateway, gw_hit[0], vendor_hit[0], vendor_hit[1])
        ranked.append((route_order(gw_hit[0], gateway.priority, vendor_hit[1], gateway.name),
                       candidate))
    ranked.sort(key=lambda r: r[0])
    plan.candidates = [r[1] for r in ranked]
    return plan

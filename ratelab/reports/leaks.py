"""The rate-plan leak check: where a customer is priced below what the vendors that route its
calls charge, before (or after) any call is made.

For every customer and number range (the distinct prefixes of its tables, of every vendor table
and, with a switch configuration, of its gateways: every number of a range has the same longest
prefix in every table), the price the cheapest-of rule gives (``ratelab/sql/reports/
rate_leaks.sql``) is compared with each vendor's rate, in the order the switch would try them
(:func:`switch.contract.route_order`). A shorter prefix in one table undercutting a longer,
dearer one in another (a private deal's 447 under the standard list's 4470) shows as
``undercut``. The loss the leaks caused comes from the rated CDRs of the ``days`` days before
``at`` (``rate_leak_calls.sql``). See docs/reports.md, "Rate-plan leaks".

>>> from ratelab.examples import sample_warehouse
>>> rate_leaks(sample_warehouse(cdrs=5), at="2026-11-02").height   # the sample sells above cost
0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ratelab.fx import base_currency, rate_on
from ratelab.prefix import segments
from ratelab.reports.common import (
    MissingRateError,
    ReportError,
    When,
    check_party,
    load_sql,
    moment,
    require_rates,
)
from switch.contract import PrefixTable, route_order

if TYPE_CHECKING:
    from ratelab.warehouse import Warehouse
    from switch.config import RoutingGateway

__all__ = ["LEAK_COLUMNS", "rate_leaks"]

#: The columns of :func:`rate_leaks`, in order.
LEAK_SCHEMA: dict[str, Any] = {
    "customer": pl.String, "prefix": pl.String, "destination": pl.String,
    "customer_table": pl.String, "customer_prefix": pl.String,
    "customer_rate": pl.Decimal(18, 6), "vendor": pl.String, "vendor_table": pl.String,
    "vendor_prefix": pl.String, "vendor_rate": pl.Decimal(18, 6), "route_rank": pl.Int64,
    "loss_per_minute": pl.Decimal(18, 6), "every_route_loses": pl.Boolean,
    "undercut": pl.Boolean, "calls": pl.Int64, "minutes": pl.Decimal(18, 1),
    "loss": pl.Decimal(18, 6), "currency": pl.String,
}
LEAK_COLUMNS: tuple[str, ...] = tuple(LEAK_SCHEMA)

_CURRENCIES_SQL = """
SELECT DISTINCT t.currency
FROM assignments a JOIN rate_tables t ON t.name = a.table_name
WHERE a.kind <> 'phone_private'
  AND a.valid_from <= $at AND (a.valid_to IS NULL OR a.valid_to > $at)
  AND (a.side = 'vendor' OR $customer IS NULL OR a.party = $customer)
  AND EXISTS (SELECT 1 FROM rates r WHERE r.table_name = a.table_name
              AND r.effective_from <= $at AND (r.effective_to IS NULL OR r.effective_to > $at))
ORDER BY t.currency
"""


def rate_leaks(wh: Warehouse, *, at: When | None = None, customer: str | None = None,
               days: int = 30, switch_config: str | Path | None = None) -> pl.DataFrame:
    """Every (customer, number range, vendor) where the customer's price is below that
    vendor's cost at ``at`` (naive UTC, default now), and what it cost over ``days`` days.

    The customer's price is the cheapest-of rule over its period, account and account_private
    tables in force at ``at`` (phone_private tables price single callers: left out, as in the
    routing snapshot), each table at the longest prefix of the range it lists; a vendor's cost
    is its table's rate at the longest prefix it lists. Banded tables count the customer's
    lowest band and the vendor's highest (the worst case). Rates are per minute, compared in
    the base currency at the exchange rates of ``at``'s day (half up to 6 places); a missing
    rate raises :class:`~ratelab.reports.common.MissingRateError`.

    Vendors are ranked in the order the switch would try them: cheapest first, or, with
    ``switch_config`` (a switch TOML file), only the routing gateways whose ``prefixes`` match
    the range, by longest gateway prefix, then ``priority``, then cost.

    Columns: customer, prefix (the range), destination, customer_table, customer_prefix,
    customer_rate, vendor, vendor_table, vendor_prefix, vendor_rate, route_rank (1 = tried
    first), loss_per_minute (vendor_rate - customer_rate, > 0), every_route_loses (no vendor
    of the range is profitable), undercut (the price comes from a shorter prefix than another
    of the customer's tables lists at a higher rate), calls, minutes and loss (cost - revenue)
    of the rated CDRs of that customer in that range through that vendor in
    ``[at - days, at)`` (0 without calls), currency (the base currency of every amount).
    Sorted by loss, then loss_per_minute (highest first), customer, prefix, route_rank.

    >>> from ratelab.examples import sample_warehouse
    >>> rate_leaks(sample_warehouse(cdrs=5), at="2026-11-02").columns[:6]
    ['customer', 'prefix', 'destination', 'customer_table', 'customer_prefix', 'customer_rate']
    """
    when = datetime.now(UTC).replace(tzinfo=None) if at is None else moment(at, "at")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ReportError(f"days must be a whole number of at least 1, got {days!r}")
    check_party(wh, "customer", customer)
    gateways = _gateways(switch_config)
    with wh.connection() as con:
        base = base_currency(con)
        currencies = [row[0] for row in con.execute(
            _CURRENCIES_SQL, {"at": when, "customer": customer}).fetchall()]
        rates = {code: rate_on(con, code, when.date()) for code in currencies}
        missing = {code: [when.date()] for code, rate in rates.items() if rate is None}
        if missing:
            raise MissingRateError(base, missing)
        params = {"at": when, "customer": customer, "fx_currencies": currencies,
                  "fx_rates": [str(rates[code]) for code in currencies],
                  "extra_prefixes": sorted({p for gw in gateways or () for p in gw.prefixes})}
        candidates: pl.DataFrame = con.sql(load_sql("rate_leaks"), params=params).pl()
    leaks = _rank(candidates, gateways)
    if leaks.is_empty():
        return pl.DataFrame(schema=LEAK_SCHEMA)
    calls = _calls(wh, candidates, leaks, when - timedelta(days=days), when)
    return (leaks.join(calls, on=["customer", "prefix", "vendor"], how="left")
            .with_columns(pl.col("calls").fill_null(0),
                          pl.col("minutes").fill_null(Decimal("0.0")),
                          pl.col("loss").fill_null(Decimal("0.000000")),
                          pl.lit(base).alias("currency"))
            .cast(LEAK_SCHEMA)  # type: ignore[arg-type]
            .select(LEAK_COLUMNS)
            .sort(["loss", "loss_per_minute", "customer", "prefix", "route_rank"],
                  descending=[True, True, False, False, False]))


def _gateways(path: str | Path | None) -> list[RoutingGateway] | None:
    """The routing gateways of a switch configuration (None: no configuration given)."""
    if path is None:
        return None
    from switch.config import load_config  # ratelab reads switch configs; only when asked

    return list(load_config(path).routing_gateways)


def _rank(candidates: pl.DataFrame, gateways: Sequence[RoutingGateway] | None) -> pl.DataFrame:
    """The leaking rows of ``candidates``, with route_rank, loss_per_minute and
    every_route_loses, vendors ordered by :func:`switch.contract.route_order`."""
    by_name: Mapping[str, tuple[PrefixTable[bool], int]] = {
        gw.name: (PrefixTable(dict.fromkeys(gw.prefixes, True)), gw.priority)
        for gw in gateways or ()}
    out: list[dict[str, Any]] = []
    # Only ranges where some vendor costs more than the price can leak; ranking the others in
    # Python would cost time on big decks for nothing.
    routed = (candidates.filter(pl.col("vendor").is_not_null())
              .filter((pl.col("vendor_rate") > pl.col("customer_rate"))
                      .any().over("customer", "prefix"))
              .sort("customer", "prefix"))
    for (_, prefix), group in groupby(routed.iter_rows(named=True),
                                      key=lambda r: (r["customer"], r["prefix"])):
        keyed = []
        for row in group:
            if gateways is None:
                key = route_order("", 1, row["vendor_rate"], row["vendor"])
            else:
                found = by_name.get(row["vendor"])
                hit = found[0].longest(str(prefix)) if found else None
                if found is None or hit is None:
                    continue  # no gateway of that vendor takes these numbers
                key = route_order(hit[0], found[1], row["vendor_rate"], row["vendor"])
            keyed.append((key, row))
        keyed.sort(key=lambda pair: pair[0])
        every = bool(keyed) and all(r["vendor_rate"] > r["customer_rate"] for _, r in keyed)
        for rank, (_, row) in enumerate(keyed, start=1):
            if row["vendor_rate"] > row["customer_rate"]:
                out.append({**row, "route_rank": rank,
                            "loss_per_minute": row["vendor_rate"] - row["customer_rate"],
                            "every_route_loses": every})
    schema: dict[str, Any] = {**candidates.schema, "route_rank": pl.Int64,
                              "loss_per_minute": pl.Decimal(18, 6),
                              "every_route_loses": pl.Boolean}
    return pl.DataFrame(out, schema=schema)


def _calls(wh: Warehouse, candidates: pl.DataFrame, leaks: pl.DataFrame, start: datetime,
           end: datetime) -> pl.DataFrame:
    """calls, minutes and loss per leaking (customer, prefix, vendor) over ``[start, end)``."""
    who = leaks["customer"].unique().to_list()
    cuts: list[tuple[str, int, int, str]] = []
    for name in who:
        ranges = candidates.filter(pl.col("customer") == name)["prefix"].unique().to_list()
        cuts.extend((name, seg.lo, seg.hi, seg.prefix) for seg in segments(ranges))
    for name in who:
        require_rates(wh, start, end, customer=name)
    pairs = leaks.select("customer", "prefix", "vendor")
    cut_frame = pl.DataFrame(cuts, schema={"customer": pl.String, "lo": pl.Int64,
                                           "hi": pl.Int64, "prefix": pl.String}, orient="row")
    with wh.connection() as con:
        con.register("leak_segments", cut_frame)
        con.register("leak_pairs", pairs)
        try:
            found: pl.DataFrame = con.sql(load_sql("rate_leak_calls"),
                                          params={"start": start, "end": end}).pl()
        finally:
            con.unregister("leak_segments")
            con.unregister("leak_pairs")
    return found

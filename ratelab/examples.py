"""A small, self-contained warehouse to try ratelab on (and to run the docstring examples).

>>> wh = sample_warehouse(rated=True)
>>> wh.rated().height
200
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from ratelab.decks import DeckRow
from ratelab.migrations import migrate
from ratelab.synthetic import SyntheticSpec, write_synthetic_cdrs
from ratelab.warehouse import Warehouse, connect

__all__ = ["CUSTOMER_DECK", "VENDOR_DECK", "example_connection", "sample_warehouse"]

CUSTOMER_DECK = """prefix,destination,rate,increment,effective_from
44,United Kingdom,0.0200,60/60,2026-01-01
447,United Kingdom - Mobile,0.0300,60/60,2026-01-01
1,USA,0.0100,6/6,2026-01-01
"""

VENDOR_DECK = """prefix,destination,rate,increment,effective_from
44,United Kingdom,0.0150,1/1,2026-01-01
447,United Kingdom - Mobile,0.0240,1/1,2026-01-01
1,USA,0.0080,6/6,2026-01-01
"""


def sample_warehouse(cdrs: int = 200, *, rated: bool = False,
                     directory: str | Path | None = None) -> Warehouse:
    """A warehouse in a temporary folder with a customer and a vendor deck and SYNTHETIC CDRs.

    Customer ``acme`` is priced by ``cust_std``, vendor ``carrier_x`` by ``vend_x``; the CDRs
    are ingested, and rated too when ``rated``.

    >>> wh = sample_warehouse(cdrs=10)
    >>> wh.sql("SELECT count(*) AS n FROM cdrs")["n"][0]
    10
    """
    root = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="ratelab-"))
    root.mkdir(parents=True, exist_ok=True)
    wh = connect(root / "warehouse.duckdb", create=True)
    for name, side, text in (("cust_std", "customer", CUSTOMER_DECK),
                             ("vend_x", "vendor", VENDOR_DECK)):
        deck = root / f"{name}.csv"
        deck.write_text(text)
        wh.import_deck(deck, name, side)
    wh.assign("cust_std", customer="acme")
    wh.assign("vend_x", vendor="carrier_x")
    spec = SyntheticSpec(["acme"], ["carrier_x"], ["44", "447", "1"],
                         datetime(2026, 11, 2), datetime(2026, 11, 3))
    write_synthetic_cdrs(root / "spool", cdrs, spec)
    wh.ingest(root / "spool")
    if rated:
        wh.rate()
    return wh


def example_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse connection holding vendor table ``vendor_x`` with prefix 44.

    For trying the store functions in ``ratelab.rates`` directly.

    >>> con = example_connection()
    >>> con.execute("SELECT prefix, rate FROM rates").fetchall()
    [('44', Decimal('0.010000'))]
    """
    from ratelab.rates import ensure_table, import_rows

    con = duckdb.connect()
    migrate(con)
    row = DeckRow(line=2, prefix="44", destination="UK", band="any",
                  first_rate=Decimal("0.01"), first_period=60, rate=Decimal("0.01"), cycle=60,
                  connect_fee=Decimal(0), effective_from=datetime(2026, 1, 1), effective_to=None)
    ensure_table(con, "vendor_x", "vendor")
    import_rows(con, "vendor_x", [row], file="vendor_x.csv", sha256="example")
    return con

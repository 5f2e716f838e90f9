"""ratelab: billing and rate analytics for wholesale VoIP carriers.

>>> from ratelab import margin
>>> margin("0.015", "0.010").quantize(Decimal("0.0001"))
Decimal('0.3333')
>>> __version__.count(".") >= 2
True
"""

from decimal import Decimal

from ratelab.decks import DeckError, DeckProblem, DeckRow, RateChange, diff_rates, read_deck
from ratelab.examples import sample_warehouse
from ratelab.finance import (
    BreakEven,
    auto_create_rate,
    billable_seconds,
    billed_seconds,
    break_even,
    call_charge,
    margin,
    markup,
)
from ratelab.ingest import IngestSummary
from ratelab.migrations import SchemaError
from ratelab.money import quantize, to_decimal
from ratelab.rates import ImportSummary
from ratelab.rating import RateSummary
from ratelab.switch_process import SwitchError, SwitchProcess
from ratelab.synthetic import SyntheticSpec, write_synthetic_cdrs
from ratelab.warehouse import (
    Warehouse,
    WarehouseBusy,
    WarehouseError,
    WarehouseNotFound,
    connect,
)


def _version() -> str:
    """The installed distribution's version; pyproject.toml's in a source tree without one."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ratelab")
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0+unknown"


__version__ = _version()

__all__ = [
    "BreakEven",
    "Decimal",
    "DeckError",
    "DeckProblem",
    "DeckRow",
    "ImportSummary",
    "IngestSummary",
    "RateChange",
    "RateSummary",
    "SchemaError",
    "SwitchError",
    "SwitchProcess",
    "SyntheticSpec",
    "Warehouse",
    "WarehouseBusy",
    "WarehouseError",
    "WarehouseNotFound",
    "__version__",
    "auto_create_rate",
    "billable_seconds",
    "billed_seconds",
    "break_even",
    "call_charge",
    "connect",
    "diff_rates",
    "margin",
    "markup",
    "quantize",
    "read_deck",
    "sample_warehouse",
    "to_decimal",
    "write_synthetic_cdrs",
]

"""Rate decks: read and validate vendor decks (CSV/XLSX), and diff them against rates in force.

>>> from ratelab.decks import canonical_column
>>> canonical_column("Dial Code")
'prefix'
"""

from ratelab.decks.columns import CANONICAL_COLUMNS, canonical_column, normalise_header
from ratelab.decks.diff import RateChange, diff_rates
from ratelab.decks.reader import BANDS, DeckError, DeckProblem, DeckRow, read_deck

__all__ = [
    "BANDS",
    "CANONICAL_COLUMNS",
    "DeckError",
    "DeckProblem",
    "DeckRow",
    "RateChange",
    "canonical_column",
    "diff_rates",
    "normalise_header",
    "read_deck",
]

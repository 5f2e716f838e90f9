"""Running the switch's event loops: one place that picks uvloop (both command lines use it).

Standard library and uvloop only, so the media relay's start-up does not load the SIP stack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["run_loop"]


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` to completion on uvloop when it is installed (a dependency on Linux and
    macOS: the same asyncio code, a faster loop), else on asyncio's own; its exit status.

    >>> async def main() -> int:
    ...     return 3
    >>> run_loop(main())
    3
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.run(main)
    return uvloop.run(main)

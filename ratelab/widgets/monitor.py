"""Live switch monitor: a start/stop toggle refreshing the spool statistics every ``interval``.

The statistics come from :func:`ratelab.widgets.spool.spool_stats`-style incremental reads of
the switch's CDR spool (so they count *ended* calls; concurrency is a lower bound). Refreshing
runs in a daemon thread that only sets widget values, which ipywidgets sends safely from any
thread; :meth:`SwitchMonitor.refresh` does one round by hand (tests, or a static notebook).

>>> import tempfile
>>> monitor = SwitchMonitor(tempfile.mkdtemp(), interval=0.1)
>>> monitor.stats.calls, monitor.running
(0, False)
"""

from __future__ import annotations

import threading
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from ratelab.switch_process import SwitchProcess
from ratelab.widgets.common import html_table, show_figure
from ratelab.widgets.spool import SpoolStats, SpoolTail, spool_figure
from switch.config import SwitchConfig

__all__ = ["SwitchMonitor", "spool_dir_of"]


def spool_dir_of(source: str | Path | SwitchProcess) -> Path:
    """The spool directory of a running switch, a switch config (``*.toml``) or the directory
    itself. A relative ``spool_dir`` in a config is taken from the switch's working directory
    (``SwitchProcess.cwd``, else the current one).

    >>> import tempfile
    >>> config = Path(tempfile.mkdtemp()) / "switch.toml"
    >>> _ = config.write_text('[switch]\\nid = "sw1"\\nspool_dir = "/var/spool/cdr"\\n')
    >>> spool_dir_of(config), spool_dir_of(SwitchProcess(config))
    (PosixPath('/var/spool/cdr'), PosixPath('/var/spool/cdr'))
    """
    cwd: Path | None = None
    if isinstance(source, SwitchProcess):
        config, cwd = source.config_path, source.cwd
    elif str(source).endswith(".toml"):
        config = Path(source)
    else:
        return Path(source)
    with Path(config).open("rb") as fh:
        # Only the one key is read (not the whole config validated): the monitor watches a
        # switch's spool, whatever else its config holds. The default is the loader's own.
        table = tomllib.load(fh).get("switch", {})
        spool = Path(table.get("spool_dir", SwitchConfig.spool_dir))
    return spool if spool.is_absolute() else (cwd or Path.cwd()) / spool


class SwitchMonitor:
    """Completed calls per second, ASR and concurrent calls of a switch, from its spool.

    ``source`` is a spool directory, a switch config file or a :class:`ratelab.SwitchProcess`
    (then refreshing stops by itself, after a last round, once the switch has exited).
    ``.widget`` is the container: a live toggle, a status line, a one-row table and a chart.
    ``.stats`` and ``.figure`` are the latest. ``start()`` / ``stop()`` flip the toggle.
    """

    def __init__(self, source: str | Path | SwitchProcess, *, interval: float = 1.0,
                 window_s: int = 60) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.switch = source if isinstance(source, SwitchProcess) else None
        self.spool_dir = spool_dir_of(source)
        self.interval = interval
        self.window_s = window_s
        self.tail = SpoolTail(self.spool_dir)
        self.toggle = widgets.ToggleButton(description="live", value=False, icon="play",
                                           tooltip="refresh every interval while on")
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.chart = widgets.Output()
        self.figure: go.Figure = go.Figure()
        self.refreshes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.toggle.observe(self._toggled, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.toggle, self.status]),
                                    self.table, self.chart])
        self.stats: SpoolStats = self.refresh()

    @property
    def running(self) -> bool:
        """True while the refreshing thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def refresh(self, now: datetime | None = None) -> SpoolStats:
        """Read the new CDRs and redraw once; return the statistics."""
        self.tail.poll()
        self.stats = self.tail.stats(now, self.window_s)
        self.figure = spool_figure(self.stats)
        self.table.value = html_table(self.stats.summary())
        show_figure(self.chart, self.figure)
        self.refreshes += 1
        return self.stats

    def start(self) -> None:
        """Start refreshing (the toggle turns on)."""
        self.toggle.value = True

    def stop(self) -> None:
        """Stop refreshing and wait for the thread (the toggle turns off)."""
        self.toggle.value = False

    def _toggled(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.toggle.icon = "stop"
            if not self.running:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"switch-monitor {self.spool_dir}")
                self._thread.start()
        else:
            self.toggle.icon = "play"
            self._stop.set()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=max(5.0, 3 * self.interval))

    def _run(self) -> None:
        where = f"{self.spool_dir}"
        while not self._stop.is_set():
            try:
                self.refresh()
                self.status.value = f"live: {where}, every {self.interval:g} s"
            except Exception as err:  # keep the thread alive: show the problem, retry
                self.status.value = f"<b>refresh failed: {err}</b>"
            if self.switch is not None and not self.switch.running:
                self.refresh()
                self.status.value = f"the switch has stopped; last read {where}"
                self.toggle.value = False
                return
            self._stop.wait(self.interval)
        self.status.value = f"stopped: {where}"

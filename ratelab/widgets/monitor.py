"""Live switch monitor: a start/stop toggle refreshing the switch's numbers every ``interval``.

When the switch's admin API is available (an ``admin_url``, or ``[admin] listen`` in the
switch's config, docs/admin.md) the monitor reads its Prometheus ``/metrics``
(:func:`read_metrics`): exact concurrent calls, CPS, calls by result, registrations, guard drops
and bans. Otherwise, or while ``/metrics`` does not answer, it shows what the CDR spool says:
:func:`ratelab.widgets.spool.spool_stats`-style incremental reads (so they count *ended* calls;
concurrency is a lower bound). The spool is read in both cases (``.stats``). Refreshing runs in
a daemon thread that only sets widget values, which ipywidgets sends safely from any thread;
:meth:`SwitchMonitor.refresh` does one round by hand (tests, or a static notebook).

Given a ``warehouse``, the monitor also shows the loss and fraud watch's current findings
(:func:`findings_view`: those seen in the last ``findings_hours``, most severe first), read
read-only at each refresh; the watch itself runs from cron (``ratelab watch``).

>>> import tempfile
>>> monitor = SwitchMonitor(tempfile.mkdtemp(), interval=0.1)
>>> monitor.stats.calls, monitor.running
(0, False)
"""

from __future__ import annotations

import threading
import time
import tomllib
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import duckdb
import ipywidgets as widgets
import plotly.graph_objects as go
import polars as pl
from prometheus_client.parser import text_string_to_metric_families

from ratelab.switch_process import SwitchProcess
from ratelab.widgets.common import html_table, show_figure
from ratelab.widgets.spool import SpoolStats, SpoolTail, spool_figure
from switch.config import SwitchConfig

__all__ = ["SwitchMetrics", "SwitchMonitor", "admin_url_of", "findings_view", "metrics_figure",
           "parse_metrics", "read_metrics", "spool_dir_of"]

#: The admin API's metric names start with this (switch/admin.py).
PREFIX = "ratelab_switch_"


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


def _config_of(source: str | Path | SwitchProcess) -> tuple[Path, Path | None] | None:
    """The config file and working directory of a switch, or None for a spool directory."""
    if isinstance(source, SwitchProcess):
        return Path(source.config_path), source.cwd
    if str(source).endswith(".toml"):
        return Path(source), None
    return None


def admin_url_of(source: str | Path | SwitchProcess) -> tuple[str, str | None] | None:
    """The admin API's base URL and bearer token of a switch config (``*.toml``) or a
    :class:`ratelab.SwitchProcess`, from ``[admin] listen`` and ``token_file``; None when the
    config has no admin API (or ``source`` is a spool directory). A wildcard listen address
    (``0.0.0.0``, ``::``) is reached on loopback; a relative ``token_file`` is taken from the
    switch's working directory, as the switch does.

    >>> import tempfile
    >>> config = Path(tempfile.mkdtemp()) / "switch.toml"
    >>> _ = config.write_text('[switch]\\nid = "sw1"\\n[admin]\\nlisten = "0.0.0.0:8080"\\n')
    >>> admin_url_of(config), admin_url_of(config.parent)
    (('http://127.0.0.1:8080', None), None)
    """
    found = _config_of(source)
    if found is None:
        return None
    config, cwd = found
    with config.open("rb") as fh:
        table = tomllib.load(fh).get("admin", {})
    listen = str(table.get("listen", ""))
    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    token: str | None = None
    if table.get("token_file"):
        path = Path(str(table["token_file"]))
        path = path if path.is_absolute() else (cwd or Path.cwd()) / path
        lines = path.read_text(encoding="utf-8").splitlines()
        token = lines[0].strip() if lines else None
    return url, token


@dataclass(frozen=True)
class SwitchMetrics:
    """One scrape of a switch's ``/metrics`` (names in docs/admin.md). ``when`` is the time of
    the scrape (naive UTC); the ``*_by_*`` and ``counters`` maps are label -> value.

    >>> m = SwitchMetrics(datetime(2026, 1, 1), cps=1.5, concurrent_calls=2,
    ...                   calls_by_result={"no_route": 3, "caller_bye": 4})
    >>> m.calls, m.summary()["concurrent"][0]
    (7, 2)
    """

    when: datetime
    cps: float = 0.0
    concurrent_calls: int = 0
    registrations: int = 0
    calls_by_result: dict[str, int] = field(default_factory=dict)
    guard_drops: dict[str, int] = field(default_factory=dict)
    guard_bans: dict[str, int] = field(default_factory=dict)
    banned: int = 0
    relay_ports_in_use: int | None = None
    spool_lag_seconds: float = 0.0
    admin_denied: int = 0
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        """Calls since the switch started, all results."""
        return sum(self.calls_by_result.values())

    def summary(self) -> pl.DataFrame:
        """The scalar figures as a one-row frame (for a table)."""
        return pl.DataFrame([{
            "now": self.when.replace(microsecond=0), "cps": self.cps,
            "concurrent": self.concurrent_calls, "calls": self.calls,
            "registrations": self.registrations, "banned": self.banned,
            "guard_drops": sum(self.guard_drops.values()),
            "relay_ports": self.relay_ports_in_use, "spool_lag_s": self.spool_lag_seconds}],
            schema_overrides={"cps": pl.Float64, "relay_ports": pl.Int64,
                              "spool_lag_s": pl.Float64})

    def results(self) -> pl.DataFrame:
        """Calls since start by result, most first."""
        rows = sorted(self.calls_by_result.items(), key=lambda kv: (-kv[1], kv[0]))
        return pl.DataFrame({"result": [k for k, _ in rows], "calls": [v for _, v in rows]},
                            schema={"result": pl.String, "calls": pl.Int64})


def parse_metrics(text: str, when: datetime | None = None) -> SwitchMetrics:
    """The switch's figures from a Prometheus text exposition (other metrics are ignored).

    >>> text = ('ratelab_switch_cps 2.5\\nratelab_switch_concurrent_calls 4\\n'
    ...         'ratelab_switch_calls_total{result="no_route"} 3\\n')
    >>> m = parse_metrics(text, datetime(2026, 1, 1))
    >>> m.cps, m.concurrent_calls, m.calls_by_result, m.relay_ports_in_use
    (2.5, 4, {'no_route': 3}, None)
    """
    scalars: dict[str, float] = {}
    labelled: dict[str, dict[str, int]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith(PREFIX):
                continue
            name = sample.name[len(PREFIX):]
            if sample.labels:
                label = next(iter(sample.labels.values()))
                labelled.setdefault(name, {})[label] = int(sample.value)
            else:
                scalars[name] = float(sample.value)
    relay = scalars.get("relay_ports_in_use")
    return SwitchMetrics(
        when=when or datetime.now(UTC).replace(tzinfo=None),
        cps=scalars.get("cps", 0.0),
        concurrent_calls=int(scalars.get("concurrent_calls", 0)),
        registrations=int(scalars.get("registrations", 0)),
        calls_by_result=labelled.get("calls_total", {}),
        guard_drops=labelled.get("guard_drops_total", {}),
        guard_bans=labelled.get("guard_bans_total", {}),
        banned=int(scalars.get("guard_banned", 0)),
        relay_ports_in_use=None if relay is None else int(relay),
        spool_lag_seconds=scalars.get("cdr_spool_lag_seconds", 0.0),
        admin_denied=int(scalars.get("admin_denied_total", 0)),
        counters=labelled.get("counter_total", {}))


def read_metrics(url: str, *, token: str | None = None, timeout: float = 2.0) -> SwitchMetrics:
    """Scrape ``<url>/metrics`` of a switch's admin API (``url`` is its base,
    ``http://host:port``); ``token`` is the bearer token when the API needs one. Raises
    ``OSError`` (``urllib.error.URLError``, ``HTTPError``) when it does not answer 200.

    >>> read_metrics("http://127.0.0.1:9", timeout=0.5)
    Traceback (most recent call last):
    ...
    urllib.error.URLError: <urlopen error ...>
    """
    request = urllib.request.Request(url.rstrip("/") + "/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    # straight to the switch: an http_proxy in the environment is not for the admin API
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as response:
        text = response.read().decode("utf-8")
    return parse_metrics(text)


def metrics_figure(history: list[SwitchMetrics], window_s: int = 60) -> go.Figure:
    """CPS (bars) and concurrent calls (a line) over the scrapes of the last ``window_s``
    seconds.

    >>> fig = metrics_figure([SwitchMetrics(datetime(2026, 1, 1), cps=2.0)])
    >>> [trace.name for trace in fig.data]
    ['cps', 'concurrent']
    """
    last = history[-1].when if history else datetime.now(UTC).replace(tzinfo=None)
    shown = [m for m in history if m.when > last - timedelta(seconds=window_s)]
    x = [m.when for m in shown]
    fig = go.Figure()
    fig.add_bar(name="cps", x=x, y=[m.cps for m in shown])
    fig.add_scatter(name="concurrent", x=x, y=[m.concurrent_calls for m in shown],
                    yaxis="y2", mode="lines")
    now = shown[-1] if shown else None
    figures = (f"{now.calls} calls since start, {now.cps:.2f} cps, {now.concurrent_calls} "
               f"concurrent" if now is not None else "no scrape yet")
    fig.update_layout(
        title=f"Last {window_s} s to {last:%H:%M:%S} UTC (/metrics): {figures}",
        yaxis={"title": "calls per second", "rangemode": "nonnegative"},
        yaxis2={"title": "concurrent", "overlaying": "y", "side": "right",
                "rangemode": "nonnegative"},
        legend={"orientation": "h"})
    return fig


#: The columns of the monitor's findings table, in order.
FINDINGS_COLUMNS = ("severity", "kind", "customer", "destination", "window_start", "summary")
_RANK = {"critical": 0, "warning": 1, "info": 2}


def findings_view(wh: Any, now: datetime | None = None, *, hours: float = 24.0,
                  rows: int = 10) -> pl.DataFrame:
    """The watch's findings seen by a run in the ``hours`` before ``now`` (default: the
    warehouse's clock), most severe first, then newest: the monitor's small table (at most
    ``rows``).

    >>> from ratelab.examples import sample_warehouse
    >>> findings_view(sample_warehouse(cdrs=5)).columns[:3]
    ['severity', 'kind', 'customer']
    """
    from ratelab.watch import findings

    if now is None:
        now = wh.sql("SELECT now()::TIMESTAMP AS t")["t"][0]
    frame = findings(wh, since=now - timedelta(hours=hours))
    frame = frame.filter(pl.col("last_seen") <= now) if frame.height else frame
    order = frame["severity"].replace_strict(_RANK, default=3, return_dtype=pl.Int64)
    return (frame.with_columns(_rank=order)
            .sort(["_rank", "last_seen"], descending=[False, True])
            .select(FINDINGS_COLUMNS).head(rows))


class SwitchMonitor:
    """CPS, concurrent calls and results of a switch, from its admin API's ``/metrics`` when
    available, else completed calls per second, ASR and concurrency from its spool.

    ``source`` is a spool directory, a switch config file or a :class:`ratelab.SwitchProcess`
    (then refreshing stops by itself, after a last round, once the switch has exited).
    ``admin_url`` (``http://host:port``) and ``token`` name the admin API; without
    ``admin_url`` a config's ``[admin]`` table is used (:func:`admin_url_of`); pass
    ``admin_url=""`` to read the spool only.
    ``.widget`` is the container: a live toggle, a status line, a table and a chart.
    ``.stats`` (the spool's, always read), ``.metrics`` (the latest scrape, None while
    ``/metrics`` is unavailable; ``.metrics_error`` says why) and ``.figure`` are the latest.
    ``start()`` / ``stop()`` flip the toggle.

    ``warehouse`` (a path or a :class:`ratelab.Warehouse`) adds the watch's current findings
    (:func:`findings_view`, ``.findings``) under the switch's numbers, read again every
    ``findings_every`` seconds (60: the watch runs every 15 minutes, and the file is left to
    the ingest cycle in between); a busy warehouse keeps the last ones and says so
    (``.findings_error``, tried again at the next refresh), it never holds up the switch's
    figures.
    """

    def __init__(self, source: str | Path | SwitchProcess, *, interval: float = 1.0,
                 window_s: int = 60, admin_url: str | None = None,
                 token: str | None = None, warehouse: Any = None,
                 findings_hours: float = 24.0, findings_every: float = 60.0) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.switch = source if isinstance(source, SwitchProcess) else None
        self.spool_dir = spool_dir_of(source)
        if admin_url is None:
            found = admin_url_of(source)
            if found is not None:
                admin_url, token = found[0], token if token is not None else found[1]
        self.admin_url = admin_url or None
        self.token = token
        self.metrics: SwitchMetrics | None = None
        self.metrics_error: str | None = None
        self.history: deque[SwitchMetrics] = deque(maxlen=max(16, int(4 * window_s / interval)))
        self.interval = interval
        self.window_s = window_s
        self.tail = SpoolTail(self.spool_dir)
        self.toggle = widgets.ToggleButton(description="live", value=False, icon="play",
                                           tooltip="refresh every interval while on")
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.chart = widgets.Output()
        self.warehouse = warehouse
        self.findings_hours = findings_hours
        self.findings_every = findings_every
        self._findings_at: float | None = None
        self.findings: pl.DataFrame | None = None
        self.findings_error: str | None = None
        self.findings_table = widgets.HTML()
        self.figure: go.Figure = go.Figure()
        self.refreshes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.toggle.observe(self._toggled, names="value")
        parts = [widgets.HBox([self.toggle, self.status]), self.table, self.chart]
        if warehouse is not None:
            parts.append(self.findings_table)
        self.widget = widgets.VBox(parts)
        self.stats: SpoolStats = self.refresh()

    @property
    def running(self) -> bool:
        """True while the refreshing thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def refresh(self, now: datetime | None = None) -> SpoolStats:
        """Read the new CDRs (and ``/metrics`` when there is an admin API) and redraw once;
        return the spool's statistics."""
        self.tail.poll()
        self.stats = self.tail.stats(now, self.window_s)
        if self.admin_url is not None:
            try:
                self.metrics = read_metrics(self.admin_url, token=self.token,
                                            timeout=max(1.0, self.interval))
                self.metrics_error = None
                self.history.append(self.metrics)
            except (OSError, ValueError) as err:  # not up (yet), refused, or not our format
                self.metrics, self.metrics_error = None, str(err)
        if self.metrics is not None:
            self.figure = metrics_figure(list(self.history), self.window_s)
            self.table.value = (html_table(self.metrics.summary())
                                + html_table(self.metrics.results(), empty="no calls yet"))
        else:
            self.figure = spool_figure(self.stats)
            self.table.value = html_table(self.stats.summary())
        show_figure(self.chart, self.figure)
        if self.warehouse is not None and (
                self._findings_at is None or self.findings_error is not None
                or time.monotonic() - self._findings_at >= self.findings_every):
            self._refresh_findings()
        self.refreshes += 1
        return self.stats

    def _refresh_findings(self) -> None:
        from ratelab.migrations import SchemaError
        from ratelab.warehouse import Warehouse, WarehouseError

        try:
            wh = self.warehouse
            if not isinstance(wh, Warehouse):
                # short waits: the ingest cycle holding the file must not stall the switch's
                # figures; the next refresh tries again
                wh = Warehouse(wh, read_only=True, lock_timeout=max(0.5, self.interval))
            # "current" is by the warehouse's clock (seen by a recent run), whatever moment
            # the spool figures are computed for
            self.findings = findings_view(wh, hours=self.findings_hours)
            self.findings_error = None
            self._findings_at = time.monotonic()
        except (WarehouseError, SchemaError, OSError, duckdb.Error) as err:
            self.findings_error = str(err)
        hours = f"{self.findings_hours:g} h"
        title = f"<b>Watch findings, last {hours}</b>"
        if self.findings_error is not None:
            title += f" <i>(not refreshed: {escape(self.findings_error)})</i>"
        body = (html_table(self.findings, empty=f"no findings in the last {hours}")
                if self.findings is not None else "")
        self.findings_table.value = f"{title}{body}"

    @property
    def where(self) -> str:
        """What the numbers shown come from: the metrics URL or the spool directory."""
        if self.metrics is not None and self.admin_url is not None:
            return f"{self.admin_url}/metrics"
        if self.admin_url is not None:
            return f"{self.spool_dir} (/metrics unavailable: {self.metrics_error})"
        return f"{self.spool_dir}"

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
        while not self._stop.is_set():
            try:
                self.refresh()
                self.status.value = f"live: {escape(self.where)}, every {self.interval:g} s"
            except Exception as err:  # keep the thread alive: show the problem, retry
                self.status.value = f"<b>refresh failed: {escape(str(err))}</b>"
            if self.switch is not None and not self.switch.running:
                self.refresh()
                self.status.value = f"the switch has stopped; last read {escape(self.where)}"
                self.toggle.value = False
                return
            self._stop.wait(self.interval)
        self.status.value = f"stopped: {escape(self.where)}"

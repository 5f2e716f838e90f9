"""Run the report notebooks: papermill executes them, nbconvert writes HTML without code.

The notebooks in ``ratelab/notebooks/`` (package data: they ship in the wheel) are thin: a cell
tagged ``parameters`` (every value a string), imports, and calls into ``ratelab.reports`` and
``ratelab.charts`` through ``ratelab.report_page``. This module

- lists them with their parameters and defaults, read from that cell (``list_reports``);
- runs one with papermill on the project kernel and writes ``NAME-<timestamp>.ipynb`` and
  ``.html`` to an output folder (``run_report``). The HTML has no code cells, embeds plotly.js
  and loads nothing from the network, so it opens offline.

>>> sorted(info.name for info in list_reports())[:2]
['auto_create_rates', 'break_even']
>>> report_info("break_even").parameters["fixed_costs"]
'1000'
"""

from __future__ import annotations

import ast
import io
import json
import sys
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ratelab.reports.common import ReportError

__all__ = [
    "KERNEL_NAME",
    "NOTEBOOKS_DIR",
    "ReportError",
    "ReportInfo",
    "ReportPaths",
    "ReportRunError",
    "ensure_kernel",
    "export_html",
    "list_reports",
    "report_info",
    "report_problem",
    "run_report",
]

#: The report notebooks, shipped inside the package (package data): found next to this module,
#: never through the working directory, so an installed ratelab lists and runs them too.
NOTEBOOKS_DIR = Path(__file__).resolve().parent / "notebooks"
KERNEL_NAME = "ratelab"


class ReportRunError(RuntimeError):
    """A notebook failed while it ran (a bug, not a bad parameter); says where to look."""


# -- the catalogue ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportInfo:
    """One report notebook: its name (file stem), title, summary and parameters."""

    name: str
    title: str
    summary: str
    path: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    help: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportPaths:
    """What ``run_report`` wrote, and the problem the report showed instead of its figures
    (a bad parameter, no calls in the period, a missing warehouse), if any.

    ``exit_code`` is what ``ratelab report`` exits with: 0 when the report showed its
    figures, else the page's (2: a parameter or the warehouse path must change; 1: the report
    could not run on this data, e.g. no calls in the period).
    """

    notebook: Path
    html: Path
    problem: str | None = None
    exit_code: int = 0

    @property
    def ok(self) -> bool:
        """Whether the report showed its figures (no problem)."""
        return self.problem is None


def report_problem(notebook: str | Path) -> tuple[str, int] | None:
    """The first problem a report page recorded in an executed notebook, with its exit code.

    :meth:`ratelab.report_page.ReportPage.fail` records it as display metadata
    (``{"ratelab": {"problem": ..., "exit_code": ...}}``); None when the report ran clean.
    """
    from ratelab.report_page import PROBLEM_KEY

    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            found = output.get("metadata", {}).get(PROBLEM_KEY)
            if isinstance(found, dict) and found.get("problem"):
                return str(found["problem"]), int(found.get("exit_code") or 1)
    return None


def _parameters(source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Defaults and comments of a parameters cell: ``name = "value"  # what it means``."""
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    defaults: dict[str, Any] = {}
    helps: dict[str, str] = {}
    for node in ast.parse(source).body:
        if (isinstance(node, ast.Assign | ast.AnnAssign)
                and isinstance(target := (node.targets[0] if isinstance(node, ast.Assign)
                                          else node.target), ast.Name)
                and node.value is not None):
            defaults[target.id] = ast.literal_eval(node.value)
            helps[target.id] = comments.get(node.lineno, "")
    return defaults, helps


def _read_info(path: Path) -> ReportInfo:
    nb = json.loads(path.read_text(encoding="utf-8"))
    title, summary = path.stem.replace("_", " "), ""
    defaults: dict[str, Any] = {}
    helps: dict[str, str] = {}
    for cell in nb.get("cells", []):
        source = "".join(cell.get("source", []))
        if cell["cell_type"] == "markdown" and not summary:
            lines = source.strip().splitlines()
            if lines and lines[0].startswith("# "):
                title = lines[0][2:].strip()
                lines = lines[1:]
            paragraphs = [" ".join(p.split()) for p in "\n".join(lines).split("\n\n")]
            summary = next((p for p in paragraphs if p), "")
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            defaults, helps = _parameters(source)
    return ReportInfo(path.stem, title, summary, path, defaults, helps)


def _is_report(path: Path) -> bool:
    """Only notebooks marked as reports (not explorers or scratch notebooks) are listed."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError):
        return False
    return bool(meta.get("ratelab", {}).get("report"))


def list_reports(notebooks_dir: str | Path | None = None) -> list[ReportInfo]:
    """Every report notebook, sorted by name, with the defaults of its parameters cell.

    A report notebook has ``"ratelab": {"report": true}`` in its metadata; other notebooks in
    the folder (the ipywidgets explorers, scratch work) are not reports.

    >>> daily = report_info("daily_report")
    >>> daily.title, daily.parameters["start"], daily.parameters["tz"]
    ('Daily report', '', 'UTC')
    """
    root = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
    return [_read_info(path) for path in sorted(root.glob("*.ipynb")) if _is_report(path)]


def report_info(name: str, notebooks_dir: str | Path | None = None) -> ReportInfo:
    """The report called ``name``; ReportError naming the known ones otherwise.

    >>> try:
    ...     report_info("daily")
    ... except ReportError as err:
    ...     print(str(err)[:42])
    unknown report 'daily'; known: auto_create
    """
    reports = list_reports(notebooks_dir)
    for info in reports:
        if info.name == name:
            return info
    raise ReportError(f"unknown report {name!r}; known: "
                      + ", ".join(info.name for info in reports))


# -- running ---------------------------------------------------------------------------------

def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """Make sure the Jupyter kernel ``name`` runs this interpreter; install it if missing.

    The spec goes to ``sys.prefix`` (the venv) with ``python`` as its program, which
    jupyter_client replaces by the interpreter that starts the kernel, so it stays right
    when the venv moves or is rebuilt. Returns the kernel name.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    def usable(argv: list[str]) -> bool:
        return bool(argv) and argv[0] in ("python", "python3", sys.executable)

    argv = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}",
            # CRITICAL: no start-up chatter in cron logs, and no "KeyboardInterrupt caught in
            # kernel" when a slow kernel is interrupted at shutdown; the notebook's own errors
            # come back through its outputs, not the kernel's log
            "--IPKernelApp.log_level=CRITICAL"]
    manager = KernelSpecManager()
    folder = Path(sys.prefix) / "share" / "jupyter" / "kernels" / name
    try:
        found = manager.get_kernel_spec(name)
        mine = Path(found.resource_dir).resolve() == folder.resolve()
        if usable(found.argv) and (found.argv == argv or not mine):
            return name
    except NoSuchKernel:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": argv, "display_name": "Python (ratelab)", "language": "python",
            "metadata": {"debugger": True}}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    found = KernelSpecManager().get_kernel_spec(name)
    if not usable(found.argv):
        raise ReportRunError(
            f"the Jupyter kernel {name!r} at {found.resource_dir} runs {found.argv[0]}, not "
            f"this ratelab's Python ({sys.executable}); remove that folder and run again")
    return name


def _stamped(out_dir: Path, name: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = out_dir / f"{name}-{stamp}"
    number = 1
    while base.with_suffix(".ipynb").exists() or base.with_suffix(".html").exists():
        number += 1
        base = out_dir / f"{name}-{stamp}-{number}"
    return base


def run_report(name: str, params: Mapping[str, Any] | None = None,
               out_dir: str | Path = "reports", *, notebooks_dir: str | Path | None = None,
               kernel_name: str | None = None, timeout: int = 900) -> ReportPaths:
    """Execute report ``name`` with ``params`` and write its .ipynb and .html to ``out_dir``.

    Parameter values are passed as strings (prefixes and ids stay strings; the notebooks
    convert amounts themselves). Unknown names raise ReportError. A bad value (an unknown
    customer, a malformed date) or a period without calls does not raise: the report says
    what is wrong, and the returned paths carry it (``problem``, ``exit_code``). A notebook
    that fails raises ReportRunError naming the cell; its files are still written.
    """
    import papermill

    info = report_info(name, notebooks_dir)
    values = {key: "" if value is None else str(value) for key, value in (params or {}).items()}
    unknown = sorted(set(values) - set(info.parameters))
    if unknown:
        raise ReportError(f"unknown parameter(s) {', '.join(unknown)} for report {name}; "
                          f"it takes: {', '.join(info.parameters)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = _stamped(out, name)
    paths = ReportPaths(base.with_suffix(".ipynb"), base.with_suffix(".html"))
    kernel = kernel_name or ensure_kernel()
    try:
        papermill.execute_notebook(str(info.path), str(paths.notebook), parameters=values,
                                   kernel_name=kernel, progress_bar=False, log_output=False,
                                   execution_timeout=timeout)
    except papermill.PapermillExecutionError as err:
        export_html(paths.notebook, paths.html, title=info.title)
        raise ReportRunError(
            f"report {name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}; "
            f"see {paths.notebook}") from None
    export_html(paths.notebook, paths.html, title=info.title)
    found = report_problem(paths.notebook)
    if found is not None:
        return ReportPaths(paths.notebook, paths.html, problem=found[0], exit_code=found[1])
    return paths


# The lab template without what it loads from CDNs (require.js, MathJax, mermaid): the reports
# need none of them, and the page must open offline.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def export_html(notebook: str | Path, html: str | Path, *, title: str | None = None) -> Path:
    """Write ``notebook`` as HTML without code cells or prompts (outputs and prose only).

    The page loads nothing from the network: plotly.js is in the notebook's outputs.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    exporter = HTMLExporter(
        extra_loaders=[jinja2.DictLoader({"ratelab_report.html.j2": _OFFLINE_TEMPLATE})],
        template_file="ratelab_report.html.j2", exclude_input=True,
        exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": title or Path(notebook).stem}})
    path = Path(html)
    path.write_text(body, encoding="utf-8")
    return path

"""The wheel is complete: built from the source tree, installed (not editable) into a fresh
venv, it lists and runs the reports and runs the demo from a folder outside the checkout.

Offline and honest: the wheel is built with ``--no-build-isolation`` by the project venv's
setuptools, from a copy of the sources (nothing is written into the checkout). The fresh venv
has no pip and no packages of its own; a ``.pth`` line puts the project venv's site-packages
*after* its own, so the dependencies (duckdb, papermill, ...) come from there. That line is a
plain path, so the project venv's editable-install hook (a ``.pth`` file there) is not run, and
``ratelab`` and ``switch`` can only be imported from the installed wheel: the test asserts it.
The dependencies' data files (nbconvert's templates) are linked into the venv's share/jupyter,
where installing them would have put them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: What a wheel is built from: the rest of the checkout (tests, data/, docs) is left out.
SOURCES = ("pyproject.toml", "README.md", "ratelab", "switch")
REPORTS = ("auto_create_rates", "break_even", "compare", "daily_report", "margin_by_destination",
           "rate_deviation", "reconciliation", "vendor_scorecard", "watch", "what_if")


def _run(*args: object, cwd: Path, env: dict[str, str],
         timeout: int = 180) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output unless it exits 0."""
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                            env=env, timeout=timeout)
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(fresh venv, a working folder outside the checkout, the environment to run in)."""
    import setuptools

    major_minor = tuple(int(part) for part in setuptools.__version__.split(".")[:2])
    assert major_minor >= (70, 1), (
        f"setuptools {setuptools.__version__} in {sys.prefix} has no bdist_wheel of its own, so "
        "no wheel can be built offline: the dev extra needs setuptools>=70.1")
    tmp = tmp_path_factory.mktemp("packaging")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "RATELAB_WAREHOUSE", "VIRTUAL_ENV")}
    env["PIP_NO_INDEX"] = "1"  # offline: nothing may come from a package index

    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    wheels = tmp / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", wheels, ".", cwd=source, env=env)
    [wheel] = wheels.glob("ratelab-*.whl")

    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp, env=env)
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                     cwd=tmp, env=env).stdout.strip())
    # the dependencies (and pip) from the project venv, searched after the venv's own packages
    (site / "_ratelab_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # ... and their data files (nbconvert's templates) where a real install puts them, in the
    # venv's share/jupyter; not the project venv's kernel spec: the report installs its own
    shared = venv / "share" / "jupyter"
    shared.mkdir(parents=True)
    for entry in (Path(sys.prefix) / "share" / "jupyter").iterdir():
        if entry.name != "kernels":
            (shared / entry.name).symlink_to(entry)
    # --ignore-installed: the project venv's (editable) ratelab metadata is on the path too
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q",
         wheel, cwd=tmp, env=env)
    shutil.rmtree(source)  # nothing below may read the copied sources

    work = tmp / "work"
    work.mkdir()
    return venv, work, env


def test_the_package_comes_from_the_installed_wheel(
        installed: tuple[Path, Path, dict[str, str]]) -> None:
    venv, work, env = installed
    out = _run(venv / "bin" / "python", "-c",
               "import ratelab, switch, ratelab.report_runner as r, ratelab.demo as d; "
               "print(ratelab.__file__, switch.__file__, r.NOTEBOOKS_DIR, d.DECKS_DIR, sep='\\n')",
               cwd=work, env=env).stdout.split("\n")
    for path in out[:4]:
        assert Path(path).resolve().is_relative_to(venv.resolve()), path
        assert not Path(path).resolve().is_relative_to(ROOT), path
    assert (venv / "bin" / "ratelab").read_text().startswith(f"#!{venv}/bin/python")
    for package in out[:2]:
        assert (Path(package).parent / "py.typed").is_file(), "PEP 561 marker not shipped"


def test_report_list_shows_the_shipped_notebooks(
        installed: tuple[Path, Path, dict[str, str]]) -> None:
    venv, work, env = installed
    out = _run(venv / "bin" / "ratelab", "report", "--list", cwd=work, env=env).stdout
    for name in REPORTS:
        assert name in out
    assert "explore" not in out  # the explorer notebook ships too, but is not a report


def test_demo_and_a_report_run_from_the_installed_package(
        installed: tuple[Path, Path, dict[str, str]]) -> None:
    """The demo imports the shipped decks, carries calls through the installed switch and ends
    with the daily report; ``ratelab report daily_report`` then runs on its warehouse. What they
    write goes under the working folder's data/ and reports/, as in a checkout."""
    venv, work, env = installed
    ratelab = venv / "bin" / "ratelab"
    out = _run(ratelab, "demo", "--calls", 30, "--synthetic-cdrs", 200, "--days", 2,
               cwd=work, env=env, timeout=240).stdout
    assert "1/8 importing the sample rate decks from" in out
    assert str(venv) in out.split("1/8 importing the sample rate decks from", 1)[1].split()[0]
    assert "30 calls placed" in out and "the switch stopped cleanly (exit 0)" in out
    assert "8/8 the daily report over today" in out
    assert (work / "data" / "warehouse.duckdb").is_file()
    assert len(list((work / "reports").glob("daily_report-*.html"))) == 1

    out = _run(ratelab, "report", "daily_report", "--out", "out", cwd=work, env=env).stdout
    [html] = (work / "out").glob("daily_report-*.html")
    assert f"wrote out/{html.name}" in out
    assert "Plotly.newPlot" in html.read_text()
    assert sorted(p.name for p in work.iterdir()) == ["data", "out", "reports"]

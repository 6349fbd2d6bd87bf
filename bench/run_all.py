"""Run every benchmark in one go and write docs/BENCHMARKS.md with a chart.

Each bench runs as a subprocess with the sizes issue 7 asks for (--quick: small sizes, to
check that the scripts work; the document then says it is a quick run). Their output is
streamed to the terminal and to a log; the `BENCH-RESULT {json}` line each prints at the
end (bench/_report.py) is collected. The document holds the machine's facts (cores, CPU,
memory, PostgreSQL, Redis and Python versions, commit, date), a table with one row per
result (bench, figure, baseline, ratio, target, met), a chart drawn here as SVG
(docs/benchmarks.svg: each figure against its target, each bench against its baseline)
and, per bench, its command, exit status, time, load average before and after, and every
figure. A bench that fails (exits non-zero, prints no result, times out) or is missing
still gets its row, saying so, and run_all exits 1.

    .venv/bin/python bench/run_all.py [--quick] [--only spend,rate_limit]
        [--pg postgres://postgres@127.0.0.1:5432] [--redis-db 13]
        [--output docs/BENCHMARKS.md] [--log PATH]

The benches create their own databases on the PostgreSQL server in --pg (default
BENCH_PG_URL, else postgres://postgres@127.0.0.1:5432) and start their own redis-server,
except bench/rate_limit.py, which flushes database --redis-db of REDIS_URL's server.
refresh_selection keeps its ~1 GB database (ls_bench_refresh) between runs; a quick run
reuses it at the size it has rather than rebuilding it small.
"""

import argparse
import contextlib
import datetime
import importlib.metadata
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape

import _report

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432"
REFRESH_DATABASE = "ls_bench_refresh"


@dataclass(frozen=True)
class Bench:
    """One benchmark script and the arguments of a full and of a quick run.

    Arguments may hold `{pg}` (the PostgreSQL server URL) and `{redis_db}`."""

    name: str
    script: str
    measures: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    timeout: float = 4 * 3600


BENCHES: tuple[Bench, ...] = (
    Bench(
        "import_csv",
        "import_csv.py",
        "a 100k-row CSV import, rows/s, against per-row ORM saves",
        full=("--rows", "100000"),
        quick=("--rows", "3000", "--baseline-rows", "300"),
    ),
    Bench(
        "pipeline_overhead",
        "pipeline_overhead.py",
        "10k leads through Celery and PostgreSQL: leads/s per worker process, against a naive "
        "one-task-per-lead design",
        full=("--leads", "10000"),
        quick=("--leads", "100"),
    ),
    Bench(
        "rate_limit",
        "rate_limit.py",
        "4 processes against a vendor limited to R/min: the shared limiter against Celery's "
        "per-worker rate_limit",
        full=("--processes", "4", "--redis-db", "{redis_db}"),
        quick=("--processes", "4", "--seconds", "20", "--redis-db", "{redis_db}"),
    ),
    Bench(
        "spend",
        "spend.py",
        "paid calls per unique lookup, a batch with 30% duplicates enriched twice, against the "
        "naive design",
        full=("--leads", "2000"),
        quick=("--leads", "150"),
    ),
    Bench(
        "find_email",
        "find_email.py",
        "Find Email, click to result minus the provider's time (p50, p95), against polling "
        "every second",
        full=(),
        quick=("--leads", "5", "--warm-up", "1"),
    ),
    Bench(
        "refresh_selection",
        "refresh_selection.py",
        "finding the leads to refresh among 1M, against the same without the expiry index "
        "and the per-lead gate read",
        full=("--leads", "1000000"),
        quick=("--leads", "20000", "--sample", "200"),
    ),
    Bench(
        "ui_pages",
        "ui_pages.py",
        "the lead list and the review queue at 100k leads + 100k values waiting, against the "
        "same pages built the default way",
        full=("--database-url", "{pg}/ls_bench_ui"),
        # The pages include page 500 of the lead list (50 a page): 25k leads at least.
        quick=("--leads", "26000", "--pending", "3000", "--database-url", "{pg}/ls_bench_ui"),
    ),
    Bench(
        "export_csv",
        "export_csv.py",
        "streaming 1M leads to CSV: peak memory against 100k",
        full=("--leads", "1000000"),
        quick=("--leads", "20000"),
    ),
    Bench(
        "fault_injection",
        "fault_injection.py",
        "5,000 leads under 5xx, 429, hangs, malformed bodies, worker SIGKILLs and a Redis "
        "restart: every run terminal, nothing paid twice",
        full=("--leads", "5000"),
        quick=("--leads", "150", "--kills", "1", "--deadline", "150"),
    ),
)


@dataclass
class Outcome:
    """What running one bench gave."""

    bench: Bench
    command: list[str] = field(default_factory=list)
    ran: bool = True
    exit_code: int | None = None
    failure: str = ""
    seconds: float = 0.0
    load_before: tuple[float, ...] = ()
    load_after: tuple[float, ...] = ()
    results: list[dict] = field(default_factory=list)
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.ran and bool(self.failure)


# --- Running -----------------------------------------------------------------------------------


def _last_words(lines: list[str]) -> str:
    """The line that best says why a bench failed: its own FAIL line, else the exception
    of its last traceback, else its last line."""
    for line in reversed(lines):
        if line.startswith("FAIL"):
            return line.strip()[:200]
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    if starts:
        # The exception is the first unindented line after the frames.
        for line in lines[starts[-1] + 1 :]:
            if line.strip() and not line[:1].isspace():
                return line.strip()[:200]
    for line in reversed(lines):
        if line.strip() and not line.startswith(_report.PREFIX):
            return line.strip()[:200]
    return ""


def run_bench(
    bench: Bench,
    args: list[str],
    *,
    env: dict[str, str],
    log,
    echo: Callable[[str], None] = print,
    bench_dir: Path = BENCH_DIR,
) -> Outcome:
    """Run one bench as a subprocess, stream its output, collect its results."""
    script = bench_dir / bench.script
    outcome = Outcome(bench=bench, command=[f"bench/{bench.script}", *args])
    outcome.load_before = os.getloadavg()
    header = f"=== {bench.name}: {' '.join(outcome.command)}"
    log.write(header + "\n")
    echo(header)
    if not script.exists():
        outcome.failure = f"bench/{bench.script} does not exist"
        outcome.load_after = os.getloadavg()
        log.write(outcome.failure + "\n")
        return outcome
    started = time.monotonic()
    lines: list[str] = []
    process = subprocess.Popen(
        [sys.executable, "-u", str(script), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
        # Its own process group, so a timeout ends the bench and whatever it started.
        start_new_session=True,
    )
    timed_out = threading.Event()

    def kill() -> None:
        # A bench silent past its time: end it and everything it started.
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    watchdog = threading.Timer(bench.timeout, kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            log.write(line + "\n")
            log.flush()
            echo(f"[{bench.name}] {line}")
            try:
                result = _report.parse_line(line)
            except ValueError as exc:
                outcome.failure = str(exc)
                continue
            if result is not None:
                outcome.results.append(result)
        process.wait()
    finally:
        watchdog.cancel()
    outcome.seconds = time.monotonic() - started
    outcome.load_after = os.getloadavg()
    outcome.exit_code = process.returncode
    if timed_out.is_set():
        outcome.failure = f"timed out after {bench.timeout:.0f} s"
    elif process.returncode != 0:
        words = _last_words(lines)
        outcome.failure = f"exit {process.returncode}" + (f": {words}" if words else "")
    elif not outcome.results and not outcome.failure:
        outcome.failure = "printed no BENCH-RESULT line"
    footer = f"=== {bench.name}: exit {process.returncode} in {outcome.seconds:.0f} s"
    log.write(footer + "\n")
    echo(footer)
    return outcome


def _database_url(pg: str, name: str) -> str:
    return urlunsplit(urlsplit(pg)._replace(path=f"/{name}"))


def refresh_database_leads(pg: str) -> int:
    """Return how many leads ls_bench_refresh holds now (0 when it does not exist)."""
    try:
        import psycopg

        with psycopg.connect(_database_url(pg, REFRESH_DATABASE), connect_timeout=5) as conn:
            row = conn.execute("SELECT to_regclass('leads_lead') IS NOT NULL").fetchone()
            if not row or not row[0]:
                return 0
            return conn.execute("SELECT count(*) FROM leads_lead").fetchone()[0]
    except Exception:
        return 0


def arguments(bench: Bench, *, quick: bool, pg: str, redis_db: int) -> tuple[list[str], str]:
    """Return the bench's arguments for this run and a note on any change made to them."""
    args = [
        part.format(pg=pg, redis_db=redis_db) for part in (bench.quick if quick else bench.full)
    ]
    note = ""
    if quick and bench.name == "refresh_selection" and "--leads" in args:
        # A different size rebuilds the database; a 1M-lead one takes long to build again.
        existing = refresh_database_leads(pg)
        position = args.index("--leads") + 1
        if existing and str(existing) != args[position]:
            args[position] = str(existing)
            note = (
                f"reused the existing {existing:,}-lead {REFRESH_DATABASE} instead of rebuilding it"
            )
    return args, note


# --- Facts about the machine ---------------------------------------------------------------------


def _command_output(command: list[str]) -> str:
    try:
        return subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=20, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _proc_value(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return ""


def _postgres_version(pg: str) -> str:
    try:
        import psycopg

        with psycopg.connect(_database_url(pg, "postgres"), connect_timeout=5) as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"


def _package(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_facts(pg: str) -> dict[str, str]:
    commit = _command_output(["git", "rev-parse", "--short=12", "HEAD"]) or "unknown"
    if _command_output(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += " with uncommitted changes"
    memory = _proc_value("/proc/meminfo", "MemTotal")
    if memory.endswith(" kB"):
        memory = f"{int(memory.split()[0]) / 1024 / 1024:.1f} GiB"
    redis_version = _command_output(["redis-server", "--version"])
    match = re.search(r"v=(\S+)", redis_version)
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "cores": str(os.cpu_count()),
        "CPU": _proc_value("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "memory": memory or "unknown",
        "OS": platform.platform(terse=True),
        "Python": platform.python_version(),
        "PostgreSQL": _postgres_version(pg),
        "Redis (redis-server)": match.group(1) if match else "unknown",
        "Django": _package("django"),
        "Celery": _package("celery"),
    }


# --- The document ------------------------------------------------------------------------------


def fmt(value: float) -> str:
    """A figure as the table shows it: integers with separators, floats to a few digits."""
    if isinstance(value, int):
        return f"{value:,}"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1 or size == 0:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _with_unit(figure: dict) -> str:
    unit = figure.get("unit") or ""
    return f"{fmt(figure['value'])} {unit}".strip()


def _loads(values: Iterable[float]) -> str:
    return " ".join(f"{value:.2f}" for value in values)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_rows(outcomes: list[Outcome]) -> list[list[str]]:
    """Rows of the results table: bench, figure, baseline, ratio, target, met."""
    rows = []
    for outcome in outcomes:
        link = f"[{outcome.bench.name}](#{outcome.bench.name})"
        if not outcome.ran:
            rows.append([link, "not run (--only)", "", "", "", "—"])
            continue
        if not outcome.results:
            rows.append([link, f"**failed: {outcome.failure}**", "", "", "", "**failed**"])
            continue
        for result in outcome.results:
            figures = result["figures"]
            # The headline, then every other figure a target is set on.
            names = [result["headline"]] + [
                name for name in result.get("targets", {}) if name in figures
            ]
            names = list(dict.fromkeys(names))
            figure = "; ".join(f"{_with_unit(figures[name])} ({name})" for name in names)
            baseline = ""
            if result.get("baseline"):
                base = result["baseline"]["figures"]
                baseline = "; ".join(
                    f"{_with_unit(base[name])}" + (f" ({name})" if len(names) > 1 else "")
                    for name in names
                    if name in base
                )
                label = result["baseline"].get("label", "")
                baseline = f"{baseline}: {label}" if baseline and label else baseline or label
            ratio = ""
            if result.get("ratio"):
                ratio = f"{fmt(result['ratio']['value'])} {result['ratio'].get('label', '')}"
            target = "; ".join(result.get("checks", {})) or "none set"
            met = {True: "yes", False: "**no**", None: "—"}[result.get("met")]
            if outcome.failure:
                met = f"**failed: {outcome.failure}**"
            rows.append([link, figure, baseline, ratio.strip(), target, met])
    return rows


def render_markdown(
    outcomes: list[Outcome],
    facts: dict[str, str],
    *,
    quick: bool,
    only: list[str],
    svg_name: str,
    seconds: float,
) -> str:
    ran = [outcome for outcome in outcomes if outcome.ran]
    failed = [outcome for outcome in outcomes if outcome.failed]
    unmet = [
        f"{outcome.bench.name}: {check}"
        for outcome in ran
        for result in outcome.results
        for check, verdict in result.get("checks", {}).items()
        if not verdict
    ]
    out = ["# Benchmarks", ""]
    if quick:
        out += [
            "> **Quick run**: small sizes, to check that the scripts work. These are not the "
            "figures issue 7 asks for; run `bench/run_all.py` without `--quick` for those.",
            "",
        ]
    if only:
        out += [
            f"> **Partial run**: only {', '.join(only)} (`--only`); the other benches did not run.",
            "",
        ]
    out += [
        f"Every figure below comes from one run of `bench/run_all.py"
        f"{' --quick' if quick else ''}{' --only ' + ','.join(only) if only else ''}` on this "
        f"machine: {facts.get('date', '?')}, commit {facts.get('commit', '?')}, "
        f"{len(ran)} benches in {seconds / 60:.0f} min. Each bench measures its baseline in the "
        "same run.",
        "",
    ]
    if failed:
        out += [
            f"**{len(failed)} bench(es) failed**: "
            + "; ".join(f"{outcome.bench.name} ({outcome.failure})" for outcome in failed)
            + ".",
            "",
        ]
    else:
        out += ["Every bench that ran finished and reported its figures.", ""]
    if unmet:
        out += ["Targets not met: " + "; ".join(unmet) + ".", ""]

    out += ["## Results", ""]
    out += ["| bench | figure | baseline (same run) | ratio | target | met |"]
    out += ["|---|---|---|---|---|---|"]
    out += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table_rows(outcomes)]
    out += ["", f"![Each figure against its target, each bench against its baseline]({svg_name})"]
    out += [""]

    out += ["## Machine", "", "| | |", "|---|---|"]
    out += [f"| {_cell(key)} | {_cell(value)} |" for key, value in facts.items()]
    out += ["", "| bench | exit | time | load average before | after |", "|---|---|---|---|---|"]
    for outcome in ran:
        out.append(
            f"| {outcome.bench.name} | "
            f"{'missing' if outcome.exit_code is None else outcome.exit_code} | "
            f"{outcome.seconds:.0f} s | {_loads(outcome.load_before)} | "
            f"{_loads(outcome.load_after)} |"
        )
    out += [""]

    out += ["## Each bench", ""]
    for outcome in outcomes:
        out += [f"### {outcome.bench.name}", ""]
        measures = outcome.bench.measures
        out += [f"{measures[:1].upper()}{measures[1:]}.", ""]
        if not outcome.ran:
            out += ["Not run (`--only`).", ""]
            continue
        out += [f"`{' '.join(outcome.command)}`", ""]
        status = "failed: " + outcome.failure if outcome.failed else "finished"
        out += [
            f"{status.capitalize()}; {outcome.seconds:.0f} s; load average "
            f"{_loads(outcome.load_before)} before, {_loads(outcome.load_after)} after."
            + (f" Note: {outcome.note}." if outcome.note else ""),
            "",
        ]
        for result in outcome.results:
            base = (result.get("baseline") or {}).get("figures", {})
            label = (result.get("baseline") or {}).get("label", "")
            out += [f"| figure | {result['bench']} | baseline{': ' + label if label else ''} |"]
            out += ["|---|---|---|"]
            for name, figure in result["figures"].items():
                other = _with_unit(base[name]) if name in base else ""
                out.append(f"| {_cell(name)} | {_with_unit(figure)} | {_cell(other)} |")
            for name, figure in base.items():
                if name not in result["figures"]:
                    out.append(f"| {_cell(name)} | | {_with_unit(figure)} |")
            out += [""]
            if result.get("ratio"):
                out += [f"Ratio: {fmt(result['ratio']['value'])} {result['ratio']['label']}.", ""]
            if result.get("checks"):
                verdicts = [
                    f"{check}: {'met' if verdict else 'NOT met'}"
                    for check, verdict in result["checks"].items()
                ]
                out += ["Targets: " + "; ".join(verdicts) + ".", ""]
            if result.get("notes"):
                out += [f"Notes: {result['notes']}", ""]
    return "\n".join(out).rstrip() + "\n"


# --- The chart ---------------------------------------------------------------------------------

_GREEN, _RED, _GREY, _BLUE, _ORANGE = "#2e7d32", "#c62828", "#9e9e9e", "#1565c0", "#ef6c00"
_WIDTH, _LABEL_W, _PLOT_W, _ROW_H = 1000, 380, 400, 22
_PROGRESS_MAX = 2.0
_RATIO_MIN, _RATIO_MAX = -1, 3  # log10 axis: 0.1x to 1000x


def progress(value: float, condition: str) -> float:
    """How far a figure is toward its target: 1 is the target exactly, more is better."""
    op, threshold = _report.parse_condition(condition)
    if op == "==":
        if value == threshold:
            return 1.0
        if value > 0 and threshold > 0:
            return min(value, threshold) / max(value, threshold)
        return 0.0
    if op in (">=", ">"):
        if threshold > 0:
            return max(value, 0) / threshold
        return _PROGRESS_MAX if _report.holds(value, condition) else 0.0
    if value > 0:
        return threshold / value
    return _PROGRESS_MAX if _report.holds(value, condition) else 0.0


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 12, **extra) -> str:
    attributes = "".join(f' {key.replace("_", "-")}="{value}"' for key, value in extra.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{attributes}>'
        f"{escape(text)}</text>"
    )


def render_svg(outcomes: list[Outcome], *, quick: bool) -> str:
    """Two panels of horizontal bars: every target check (figure / target, 1 = met exactly,
    capped at 2) and every ratio against a same-run baseline (log scale)."""
    checks: list[tuple[str, float | None, bool | None, str]] = []
    ratios: list[tuple[str, float | None, str]] = []
    for outcome in outcomes:
        if not outcome.ran:
            continue
        name = outcome.bench.name
        if not outcome.results:
            checks.append((name, None, None, f"failed: {outcome.failure}"[:70]))
            continue
        for result in outcome.results:
            for target_name, condition in result.get("targets", {}).items():
                if target_name == "ratio":
                    value = (result.get("ratio") or {}).get("value")
                    shown = f"{fmt(value)}x"
                else:
                    value = result["figures"][target_name]["value"]
                    shown = _with_unit(result["figures"][target_name])
                verdict = _report.holds(value, condition)
                label = f"{name}: {target_name} {condition}"
                checks.append((label, progress(value, condition), verdict, shown))
            if result.get("ratio"):
                value = result["ratio"]["value"]
                ratios.append((name, value, f"{fmt(value)} {result['ratio']['label']}"))
    plot_x = _LABEL_W
    y = 34
    parts = [
        _text(
            12,
            22,
            "Leadsmith benchmarks" + (" (quick run: small sizes)" if quick else ""),
            size=15,
            font_weight="bold",
        ),
    ]

    def panel(title: str, axis: list[tuple[float, str]], line_at: float) -> None:
        nonlocal y
        y += 20
        parts.append(_text(12, y, title, size=13, font_weight="bold"))
        y += 8
        for position, label in axis:
            x = plot_x + position * _PLOT_W
            parts.append(_text(x, y + 4, label, anchor="middle", size=10, fill="#555"))
        y += 10
        x = plot_x + line_at * _PLOT_W
        parts.append(
            f'<line x1="{x:.1f}" y1="{y - 2}" x2="{x:.1f}" y2="{{bottom}}" stroke="#333" '
            f'stroke-dasharray="4 3"/>'
        )

    # Panel 1: against the target.
    panel(
        "Each figure against its target (1 = the target exactly; right of the line is better)",
        [(i / 4, f"{_PROGRESS_MAX * i / 4:g}" + (" (target)" if i == 2 else "")) for i in range(5)],
        1 / _PROGRESS_MAX,
    )
    top = len(parts) - 1
    for label, score, verdict, shown in checks or [("no bench set a target", None, None, "")]:
        y += _ROW_H
        parts.append(_text(plot_x - 8, y - 6, label[:60], anchor="end", size=11))
        if score is None:
            parts.append(_text(plot_x + 4, y - 6, shown, size=11, fill=_RED if shown else _GREY))
            continue
        width = min(score, _PROGRESS_MAX) / _PROGRESS_MAX * _PLOT_W
        colour = _GREEN if verdict else _RED
        parts.append(
            f'<rect x="{plot_x}" y="{y - 17}" width="{max(width, 1.5):.1f}" height="15" '
            f'fill="{colour}"/>'
        )
        more = " (off the scale)" if score > _PROGRESS_MAX else ""
        parts.append(_text(plot_x + max(width, 1.5) + 4, y - 6, f"{shown}{more}", size=11))
    parts[top] = parts[top].replace("{bottom}", f"{y + 4}")

    # Panel 2: against the same-run baseline.
    span = _RATIO_MAX - _RATIO_MIN
    panel(
        "Each bench against its baseline, measured in the same run (times better, log scale)",
        [
            ((p - _RATIO_MIN) / span, f"{10.0**p:g}x" + (" (the baseline)" if p == 0 else ""))
            for p in range(_RATIO_MIN, _RATIO_MAX + 1)
        ],
        -_RATIO_MIN / span,
    )
    top = len(parts) - 1
    for name, value, shown in ratios or [("no bench reported a ratio", None, "")]:
        y += _ROW_H
        parts.append(_text(plot_x - 8, y - 6, name, anchor="end", size=11))
        if value is None or value <= 0:
            continue
        position = (min(max(math.log10(value), _RATIO_MIN), _RATIO_MAX) - _RATIO_MIN) / span
        one = -_RATIO_MIN / span
        start, end = sorted((one, position))
        parts.append(
            f'<rect x="{plot_x + start * _PLOT_W:.1f}" y="{y - 17}" '
            f'width="{max((end - start) * _PLOT_W, 1.5):.1f}" height="15" '
            f'fill="{_BLUE if value >= 1 else _ORANGE}"/>'
        )
        parts.append(_text(plot_x + max(end, one) * _PLOT_W + 4, y - 6, shown[:60], size=11))
    parts[top] = parts[top].replace("{bottom}", f"{y + 4}")
    height = y + 16
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif">\n'
        f'<rect width="{_WIDTH}" height="{height}" fill="white"/>\n'
        + "\n".join(parts)
        + "\n</svg>\n"
    )


# --- Entry point -------------------------------------------------------------------------------


def run(
    benches: Iterable[Bench],
    *,
    quick: bool,
    only: list[str],
    output: Path,
    svg: Path,
    log_path: Path,
    pg: str,
    redis_db: int,
    facts: Callable[[], dict[str, str]],
    bench_dir: Path = BENCH_DIR,
    echo: Callable[[str], None] = print,
) -> int:
    """Run the benches, write the document and the chart; return 1 if any bench failed."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "BENCH_PG_URL": pg,
        "FAULT_PG_URL": pg,
        "DATABASE_URL": _database_url(pg, "postgres"),
    }
    started = time.monotonic()
    machine = facts()
    machine["load average at the start"] = _loads(os.getloadavg())
    outcomes = []
    with log_path.open("w", encoding="utf-8") as log:
        for bench in benches:
            if only and bench.name not in only:
                outcomes.append(Outcome(bench=bench, ran=False))
                continue
            args, note = arguments(bench, quick=quick, pg=pg, redis_db=redis_db)
            outcome = run_bench(bench, args, env=env, log=log, echo=echo, bench_dir=bench_dir)
            # The server's URL may hold a password: the document names it only as <pg>.
            outcome.command = [part.replace(pg, "<pg>") for part in outcome.command]
            outcome.note = note
            outcomes.append(outcome)
    machine["load average at the end"] = _loads(os.getloadavg())
    output.parent.mkdir(parents=True, exist_ok=True)
    svg.parent.mkdir(parents=True, exist_ok=True)
    svg.write_text(render_svg(outcomes, quick=quick), encoding="utf-8")
    output.write_text(
        render_markdown(
            outcomes,
            machine,
            quick=quick,
            only=only,
            svg_name=os.path.relpath(svg, output.parent),
            seconds=time.monotonic() - started,
        ),
        encoding="utf-8",
    )
    failed = [outcome.bench.name for outcome in outcomes if outcome.failed]
    echo(f"wrote {output} and {svg}; log {log_path}")
    if failed:
        echo(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    names = [bench.name for bench in BENCHES]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the scripts")
    parser.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(names)}")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG_URL") or DEFAULT_PG)
    parser.add_argument(
        "--redis-db", type=int, default=13, help="REDIS_URL database rate_limit flushes"
    )
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    parser.add_argument("--log", type=Path, help="all output (default: a temporary file)")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(names))
    if unknown:
        parser.error(f"unknown benches {unknown}; known: {', '.join(names)}")
    if not args.pg.startswith("postgres"):
        parser.error("--pg must be a PostgreSQL server URL (postgres://user@host:port)")
    if shutil.which("redis-server") is None:
        parser.error("redis-server must be on PATH: the benches start their own")
    pg = args.pg.rstrip("/")
    if urlsplit(pg).path not in ("", "/"):
        parser.error("--pg names the server only, without a database")
    log_path = args.log or Path(tempfile.mkstemp(prefix="leadsmith-bench-", suffix=".log")[1])
    sys.stdout.reconfigure(line_buffering=True)
    return run(
        BENCHES,
        quick=args.quick,
        only=only,
        output=args.output,
        svg=args.output.parent / "benchmarks.svg",
        log_path=log_path,
        pg=pg,
        redis_db=args.redis_db,
        facts=lambda: machine_facts(pg),
    )


if __name__ == "__main__":
    sys.exit(main())

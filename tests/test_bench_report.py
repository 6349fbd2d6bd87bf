"""bench/run_all.py and bench/_report.py: results collected from the benches' output, the
document and the chart written, a failing or missing bench reported. Pure Python: the
benches here are small fake scripts, no service is needed."""

import importlib
import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def modules(monkeypatch):
    # The benches run as scripts, bench/ first on their path: import them the same way.
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    return importlib.import_module("_report"), importlib.import_module("run_all")


def _script(folder: Path, name: str, body: str) -> None:
    header = f"import sys\nsys.path.insert(0, {str(BENCH_DIR)!r})\n"
    (folder / name).write_text(header + textwrap.dedent(body))


FACTS = {"date": "2030-01-02 03:04 UTC", "commit": "0123456789ab", "cores": "2"}


def _run(run_all, tmp_path, benches, *, quick=True, only=()):
    output = tmp_path / "docs" / "BENCHMARKS.md"
    svg = tmp_path / "docs" / "benchmarks.svg"
    code = run_all.run(
        benches,
        quick=quick,
        only=list(only),
        output=output,
        svg=svg,
        log_path=tmp_path / "bench.log",
        pg="postgres://nobody@127.0.0.1:1",
        redis_db=10,
        facts=lambda: dict(FACTS),
        bench_dir=tmp_path,
        echo=lambda line: None,
    )
    return code, output.read_text(), svg.read_text()


def test_a_failed_and_a_missing_bench_get_their_rows_and_the_run_fails(modules, tmp_path):
    _, run_all = modules
    _script(
        tmp_path,
        "good.py",
        """
        from _report import report
        print("some progress line")
        report(
            "good",
            {"paid calls per unique lookup": (1.0, "calls/lookup"), "leads": (150, "leads")},
            baseline={"paid calls per unique lookup": (2.86, "calls/lookup")},
            baseline_label="naive design",
            ratio=2.86,
            ratio_label="times fewer paid calls",
            targets={"paid calls per unique lookup": "== 1.00"},
        )
        """,
    )
    _script(
        tmp_path,
        "slow.py",
        """
        from _report import report
        report(
            "slow",
            {"throughput": (18.9, "leads/s")},
            baseline={"throughput": (15.8, "leads/s")},
            ratio=1.2,
            ratio_label="times the naive rate",
            targets={"throughput": ">= 500", "ratio": ">= 5"},
        )
        """,
    )
    _script(
        tmp_path,
        "broken.py",
        """
        print("setting up")
        print("Traceback (most recent call last):")
        print('  File "bench/broken.py", line 9, in <module>')
        print("psycopg.errors.ObjectInUse: database is being accessed by other users")
        print("DETAIL:  There is 1 other session using the database.")
        sys.exit(3)
        """,
    )
    _script(tmp_path, "silent.py", 'print("done, but no result")\n')
    benches = [
        run_all.Bench("good", "good.py", "a bench that meets its target"),
        run_all.Bench("slow", "slow.py", "a bench that misses its targets"),
        run_all.Bench("broken", "broken.py", "a bench that crashes"),
        run_all.Bench("silent", "silent.py", "a bench that reports nothing"),
        run_all.Bench("absent", "absent.py", "a bench not written yet"),
        run_all.Bench("db", "good.py", "a bench given the server", full=("--url", "{pg}/db")),
    ]

    code, document, svg = _run(run_all, tmp_path, benches, quick=False)

    assert code == 1
    assert "Quick run" not in document
    rows = {line.split(" | ")[0]: line for line in document.splitlines() if line.startswith("| [")}
    good = rows["| [good](#good)"]
    assert "1.00 calls/lookup (paid calls per unique lookup)" in good
    assert "2.86 calls/lookup: naive design" in good
    assert "2.86 times fewer paid calls" in good
    assert good.endswith("| yes |")
    slow = rows["| [slow](#slow)"]
    assert "throughput >= 500; ratio >= 5" in slow
    assert slow.endswith("| **no** |")
    assert (
        "failed: exit 3: psycopg.errors.ObjectInUse: database is being accessed by other users"
        in rows["| [broken](#broken)"]
    )
    assert "failed: printed no BENCH-RESULT line" in rows["| [silent](#silent)"]
    assert "failed: bench/absent.py does not exist" in rows["| [absent](#absent)"]
    assert "**3 bench(es) failed**" in document
    assert "Targets not met: slow: throughput >= 500; slow: ratio >= 5." in document
    assert "![Each figure against its target" in document
    assert "(benchmarks.svg)" in document
    assert "| cores | 2 |" in document
    assert "`bench/good.py --url <pg>/db`" in document
    assert "nobody@" not in document
    assert "commit 0123456789ab" in document

    chart = ET.fromstring(svg)  # noqa: S314 (the script's own output)
    texts = [element.text for element in chart.iter("{http://www.w3.org/2000/svg}text")]
    assert "good: paid calls per unique lookup == 1.00" in texts
    assert any(text and text.startswith("failed: exit 3") for text in texts)
    fills = [element.get("fill") for element in chart.iter("{http://www.w3.org/2000/svg}rect")]
    assert "#2e7d32" in fills  # a met target
    assert "#c62828" in fills  # a missed one

    log = (tmp_path / "bench.log").read_text()
    assert "some progress line" in log
    assert "There is 1 other session using the database." in log


def test_a_run_where_every_bench_reports_passes(modules, tmp_path):
    _, run_all = modules
    _script(
        tmp_path,
        "one.py",
        'from _report import report\nreport("one", {"p95": (42.0, "ms")}, '
        'targets={"p95": "<= 100"})\n',
    )
    benches = [
        run_all.Bench("one", "one.py", "a bench"),
        run_all.Bench("other", "other.py", "a bench left out with --only"),
    ]

    code, document, svg = _run(run_all, tmp_path, benches, quick=True, only=["one"])

    assert code == 0
    assert "**Quick run**" in document
    assert "**Partial run**: only one" in document
    assert "not run (--only)" in document
    assert "Every bench that ran finished and reported its figures." in document
    assert "42.0 ms (p95)" in document
    ET.fromstring(svg)  # noqa: S314 (the script's own output)


def test_report_prints_one_parsable_line_and_judges_the_targets(modules, capsys):
    report_module, _ = modules
    printed = report_module.report(
        "spend",
        {"paid calls per unique lookup": (1.0, "calls/lookup"), "429s": (0, "")},
        targets={"paid calls per unique lookup": "== 1.00", "429s": "== 0"},
    )
    line = capsys.readouterr().out.strip()
    assert line.startswith("BENCH-RESULT {")
    assert report_module.parse_line(line) == printed == json.loads(line.split(" ", 1)[1])
    assert printed["met"] is True
    assert printed["checks"] == {"paid calls per unique lookup == 1.00": True, "429s == 0": True}

    missed = report_module.record("spend", {"calls": (1.01, "")}, targets={"calls": "== 1.00"})
    assert missed["met"] is False
    assert report_module.record("x", {"calls": (3, "")})["met"] is None


@pytest.mark.parametrize(
    ("figures", "options", "message"),
    [
        ({}, {}, "at least one figure"),
        ({"a": (float("nan"), "")}, {}, "finite"),
        ({"a": ("fast", "")}, {}, "must be a number"),
        ({"a": 1.0}, {}, "(value, unit) pair"),
        ({"a": (1.0, "")}, {"targets": {"a": "about 1"}}, "is not '<op> <number>'"),
        ({"a": (1.0, "")}, {"targets": {"b": ">= 1"}}, "not a figure"),
        ({"a": (1.0, "")}, {"targets": {"ratio": ">= 5"}}, "needs a ratio"),
        ({"a": (1.0, "")}, {"headline": "b"}, "headline 'b'"),
    ],
)
def test_a_wrong_result_is_refused_with_the_reason(modules, figures, options, message):
    report_module, _ = modules
    with pytest.raises(ValueError, match=re.escape(message)):
        report_module.record("bench", figures, **options)


def test_a_line_that_claims_to_be_a_result_but_is_not_is_an_error(modules):
    report_module, _ = modules
    assert report_module.parse_line("plain progress output") is None
    with pytest.raises(ValueError, match="unreadable"):
        report_module.parse_line("BENCH-RESULT {not json")
    with pytest.raises(ValueError, match="figures"):
        report_module.parse_line('BENCH-RESULT {"bench": "x"}')


def test_every_listed_bench_exists_and_reports_under_its_name(modules):
    _, run_all = modules
    for bench in run_all.BENCHES:
        source = (BENCH_DIR / bench.script).read_text()
        assert "_report import report" in source, bench.script
        assert f'"{bench.name}"' in source, bench.script


def test_progress_toward_a_target(modules):
    _, run_all = modules
    assert run_all.progress(1.0, "== 1.00") == 1.0
    assert run_all.progress(250, ">= 500") == 0.5
    assert run_all.progress(50, "<= 100") == 2.0
    assert run_all.progress(0, "== 0") == 1.0
    assert run_all.progress(3, "== 0") == 0.0


def test_a_bench_silent_past_its_time_is_ended_and_reported(modules, tmp_path):
    _, run_all = modules
    _script(tmp_path, "stuck.py", 'import time\nprint("waiting", flush=True)\ntime.sleep(60)\n')
    benches = [run_all.Bench("stuck", "stuck.py", "a bench that hangs", timeout=1)]

    code, document, _ = _run(run_all, tmp_path, benches)

    assert code == 1
    assert "failed: timed out after 1 s" in document

"""One machine-readable line per benchmark, which bench/run_all.py collects.

Every bench ends its main with a call like

    from _report import report

    report(
        "spend",
        {"paid calls per unique lookup": (1.0, "calls/lookup"), "leads": (2000, "leads")},
        headline="paid calls per unique lookup",
        baseline={"paid calls per unique lookup": (2.86, "calls/lookup")},
        baseline_label="naive design (bench/naive_enrich.py)",
        ratio=2.86,
        ratio_label="times fewer paid calls",
        targets={"paid calls per unique lookup": "== 1.00"},
    )

which prints one line, `BENCH-RESULT {json}`, among the bench's usual output:

- `figures`: every figure, name -> {"value", "unit"}; `headline` names the one the table
  shows (the first by default);
- `baseline`: the same figures measured in the same run for the baseline, and its label;
- `ratio`: how many times better than the baseline (more than 1 is better), and what it
  counts;
- `targets`: figure name (or "ratio") -> condition, one of `>= N`, `<= N`, `> N`, `< N`,
  `== N`; `checks` holds each condition's verdict and `met` is true when all hold (null
  when the bench has no target).

A bench may print several lines (several records); run_all keeps them all.
"""

import json
import math
import operator
import re
from collections.abc import Mapping
from typing import Any

PREFIX = "BENCH-RESULT "
_CONDITION = re.compile(r"^\s*(>=|<=|==|>|<)\s*(-?[0-9][0-9_,]*(?:\.[0-9]+)?)\s*$")
_OPERATORS = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}


def parse_condition(condition: str) -> tuple[str, float]:
    """Return (operator, threshold) of a target like ">= 500"; ValueError if it is not one."""
    match = _CONDITION.match(condition)
    if not match:
        raise ValueError(
            f"target {condition!r} is not '<op> <number>' with op one of >=, <=, >, <, =="
        )
    return match.group(1), float(match.group(2).replace(",", "").replace("_", ""))


def holds(value: float, condition: str) -> bool:
    op, threshold = parse_condition(condition)
    return bool(_OPERATORS[op](value, threshold))


def _number(name: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"figure {name!r} must be a number, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"figure {name!r} must be finite, not {value!r}")
    return value


def _figures(figures: Mapping[str, tuple[float, str]]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, pair in figures.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"figure {name!r} must be a (value, unit) pair, not {pair!r}")
        value, unit = pair
        out[name] = {"value": _number(name, value), "unit": str(unit)}
    return out


def record(
    bench: str,
    figures: Mapping[str, tuple[float, str]],
    *,
    headline: str | None = None,
    baseline: Mapping[str, tuple[float, str]] | None = None,
    baseline_label: str = "",
    ratio: float | None = None,
    ratio_label: str = "",
    targets: Mapping[str, str] | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """Return the record `report` prints; ValueError for a figure or target that is wrong."""
    if not bench or not figures:
        raise ValueError("a result needs the bench's name and at least one figure")
    values = _figures(figures)
    headline = headline or next(iter(values))
    if headline not in values:
        raise ValueError(f"headline {headline!r} is not one of the figures {sorted(values)}")
    checks: dict[str, bool] = {}
    for name, condition in (targets or {}).items():
        if name == "ratio":
            if ratio is None:
                raise ValueError("a target on the ratio needs a ratio")
            value = ratio
        elif name in values:
            value = values[name]["value"]
        else:
            raise ValueError(f"target on {name!r}, which is not a figure nor 'ratio'")
        checks[f"{name} {condition.strip()}"] = holds(value, condition)
    return {
        "bench": bench,
        "headline": headline,
        "figures": values,
        "baseline": (
            {"label": baseline_label, "figures": _figures(baseline)} if baseline else None
        ),
        "ratio": (
            {"value": _number("ratio", ratio), "label": ratio_label} if ratio is not None else None
        ),
        "targets": {name: condition.strip() for name, condition in (targets or {}).items()},
        "checks": checks,
        "met": all(checks.values()) if checks else None,
        "notes": notes,
    }


def report(bench: str, figures: Mapping[str, tuple[float, str]], **options: Any) -> dict:
    """Print the bench's result as one `BENCH-RESULT {json}` line and return it."""
    result = record(bench, figures, **options)
    print(PREFIX + json.dumps(result, ensure_ascii=False), flush=True)
    return result


def parse_line(line: str) -> dict[str, Any] | None:
    """Return the record on a BENCH-RESULT line, None for any other line; ValueError when
    the line says it is a result but is not one."""
    start = line.find(PREFIX)
    if start < 0:
        return None
    try:
        result = json.loads(line[start + len(PREFIX) :])
    except ValueError as exc:
        raise ValueError(f"unreadable BENCH-RESULT line: {exc}") from None
    if not isinstance(result, dict) or not isinstance(result.get("figures"), dict):
        raise ValueError("a BENCH-RESULT line must hold an object with figures")
    return result

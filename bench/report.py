"""Figures, where they are kept between runs, and docs/PERFORMANCE.md made from them.

Each run measures some groups; their figures replace that group's previous ones in the
results file (JSON), and the Markdown is regenerated from every group the file holds, so
`bench/run sink` refreshes the sink's rows and keeps the rest as last measured.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType


@dataclass
class Figure:
    """One measured figure. `value` is None when it could not be measured (`note` says why)."""

    name: str
    value: float | None
    unit: str
    command: str
    note: str = ""

    def shown(self) -> str:
        if self.value is None:
            return f"not measured: {self.note}" if self.note else "not measured"
        text = format_value(self.value, self.unit)
        return f"{text} ({self.note})" if self.note else text


def format_value(value: float, unit: str) -> str:
    if unit in ("metrics/s", "lines/s", "records/s", "metrics", "records"):
        return f"{value:,.0f} {unit}"
    if unit == "×":
        return f"{value:.2f}×"
    if unit == "s":
        return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"
    if unit == "ms":
        return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"
    if unit == "µs":
        return f"{value:.2f} µs"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "CPU-s/min":
        return f"{value:.3f} CPU-s/min"
    return f"{value:g} {unit}".rstrip()


@dataclass
class GroupResult:
    """The figures of one group from one run."""

    group: str
    measured: str  # UTC, ISO 8601
    machine: str
    settings: str  # durations and sizes used, e.g. "120 s per interval"
    figures: list[Figure] = field(default_factory=list)


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())


def load_results(path: Path) -> dict[str, GroupResult]:
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    results = {}
    for name, entry in raw.get("groups", {}).items():
        figures = [Figure(**figure) for figure in entry.pop("figures")]
        results[name] = GroupResult(**entry, figures=figures)
    return results


def save_results(path: Path, results: dict[str, GroupResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"groups": {name: asdict(result) for name, result in results.items()}}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def find(results: dict[str, GroupResult], group: str, name: str) -> Figure | None:
    result = results.get(group)
    if result is None:
        return None
    return next((figure for figure in result.figures if figure.name == name), None)


TARGETS_HEAD = "| target | agent | compared with, same run | ratio | met |"
TARGETS_NOTE = (
    "Each ratio is the agent's figure over the one it is compared with, both measured in the "
    "same run of `bench/run`, on the same data (cpu lines whose values never repeat, 50 "
    "hosts × 8 CPUs) and, where both read a config, the same config file. Telegraf is "
    "Telegraf 1.37.2 built with the plugins the benchmarks run (bench/telegraf.py). What "
    "each figure measures and what limits it is said under *What each figure means* below."
)


@dataclass(frozen=True)
class Target:
    """A goal the issue sets, checked against a measured figure, or against the ratio of that
    figure to another of the same group (`versus`: Telegraf's, measured in the same run)."""

    text: str
    group: str
    figure: str
    limit: float
    at_least: bool  # True: the figure (or ratio) must reach `limit`; False: stay at or below
    versus: str | None = None
    versus_label: str = "Telegraf"


def _target_row(results: dict[str, GroupResult], target: Target) -> str:
    figure = find(results, target.group, target.figure)
    agent_cell = _cell(figure.shown()) if figure else "not measured"
    value = figure.value if figure else None
    versus_cell = ratio_cell = "—"
    if target.versus is not None:
        versus = find(results, target.group, target.versus)
        versus_cell = (
            f"{target.versus_label}: {_cell(versus.shown()) if versus else 'not measured'}"
        )
        value = value / versus.value if value is not None and versus and versus.value else None
        ratio_cell = f"{value:.2f}×" if value is not None else "—"
    if value is None:
        met = "not measured"
    elif value >= target.limit if target.at_least else value <= target.limit:
        met = "yes"
    else:
        met = "**no**"
    return f"| {target.text} | {agent_cell} | {versus_cell} | {ratio_cell} | {met} |"


def render(
    results: dict[str, GroupResult],
    groups: dict[str, ModuleType],
    targets: list[Target],
    header: str,
) -> str:
    """docs/PERFORMANCE.md: the targets, one table per group, what each figure means."""
    out = [header, "", "## Targets", "", TARGETS_HEAD, "|---|---|---|---|---|"]
    out += [_target_row(results, target) for target in targets]
    out += ["", TARGETS_NOTE]
    for name, module in groups.items():
        result = results.get(name)
        out += ["", f"## {module.TITLE} (`bench/run {name}`)", ""]
        if result is None:
            out.append("Not measured yet: run `bench/run " + name + "`.")
            continue
        out.append(f"Measured {result.measured}; {result.settings}.")
        out += ["", "| figure | value | command | machine |", "|---|---|---|---|"]
        for figure in result.figures:
            command = f"`{_cell(figure.command)}`" if figure.command else "—"
            out.append(
                f"| {_cell(figure.name)} | {_cell(figure.shown())} | {command} "
                f"| {_cell(result.machine)} |"
            )
    out += ["", "## What each figure means", ""]
    for name, module in groups.items():
        out += [f"**{module.TITLE}** (`{name}`). {module.MEANING.strip()}", ""]
    return "\n".join(out).rstrip() + "\n"

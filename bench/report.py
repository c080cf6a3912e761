"""Turn one run's JSON results (bench/results.py) into docs/results.rst and its chart.

    python bench/report.py DIR [--rst docs/results.rst] [--charts docs/_static/bench]

Reads every ``*.json`` in DIR (the files one ``nox -s bench`` wrote), rewrites the part of the
rst page between its two ``bench/report.py`` markers (a section per script, a table per
workload: contenders in both calling styles, medians, runs, ratios, goals and verdicts, with
the date, Python, machine and pinning), and draws one chart of each ftcore row's ratio to the
best peer of its workload, with its goals, as ``ratios.png`` in the charts directory.
matplotlib (the dev extra) is imported here and nowhere else.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BEGIN = ".. begin bench/report.py output"
END = ".. end bench/report.py output"
CHART = "ratios.png"
ORDER = ("loop", "importtime", "core_overhead", "http", "files", "streaming", "websocket",
         "udp", "tcp")  # fmt: skip
Run = List[Dict[str, Any]]  # the scripts' JSON documents


def load(directory: str) -> Run:
    """The JSON files of one run, in the order of the docs."""
    documents = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        if document.get("schema") != 1:
            raise SystemExit("%s: not a bench/results.py file (schema 1)" % path)
        documents.append(document)
    if not documents:
        raise SystemExit("no results in %s" % directory)
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(documents, key=lambda d: (rank.get(d["script"], len(ORDER)), d["script"]))


def workloads(document: Dict[str, Any]) -> List[Tuple[str, List[Dict[str, Any]]]]:
    """The rows of one script, grouped by workload, in the order they were written."""
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for row in document["rows"]:
        groups.setdefault(row["workload"], []).append(row)
    return list(groups.items())


# -- the rst ------------------------------------------------------------------------------------


def render(run: Run, chart: Optional[str]) -> str:
    """The generated part of the page (between the markers)."""
    first = run[0]
    lines = [
        BEGIN + " (from one run's JSON: edit the script, not this text)",
        "",
        "Run of %s: Python %s (%s), %s; %s." % (
            _date(min(d["date"] for d in run)), first["python"], first["implementation"],
            first["machine"], "``nox -s bench -- --quick``" if _quick(run) else "``nox -s bench``",
        ),
        "",
    ]  # fmt: skip
    if _quick(run):
        lines += [
            ".. warning::",
            "",
            "   These figures come from a ``--quick`` smoke run (fewer and shorter runs): they",
            "   show that the benchmarks work, not how fast anything is. ``nox -s bench`` makes",
            "   the real ones.",
            "",
        ]
    missing = [name for name in ORDER if name not in {d["script"] for d in run}]
    if missing:
        lines += ["Not in this run: %s." % ", ".join("``bench/%s.py``" % m for m in missing), ""]
    if chart:
        lines += [
            ".. figure:: %s" % chart,
            "   :alt: each ftcore row's median over the best peer's, with its goals",
            "   :width: 100%",
            "",
            "   Each ftcore row's ratio to the best peer of its workload (log scale; above 1:",
            "   ftcore does better). A tick marks a goal, moved onto the same scale; the colour",
            "   says whether the row met all its goals.",
            "",
        ]
    for document in run:
        lines += _section(document)
    lines.append(END)
    return "\n".join(lines) + "\n"


def _section(document: Dict[str, Any]) -> List[str]:
    title = "%s (``bench/%s.py``)" % (document["group"], document["script"])
    about = [
        "Measured %s" % _date(document["date"]),
        "Python %s" % document["python"],
        document["machine"],
    ]
    about += ["%s: %s" % kv for kv in document["notes"].items()]
    lines = [title, "~" * len(title), "", "; ".join(about) + ".", ""]
    for name, rows in workloads(document):
        lines += _table(name, rows)
    return lines


def _table(name: str, rows: List[Dict[str, Any]]) -> List[str]:
    first = rows[0]
    runs = sorted({row["runs"] for row in rows})
    facts = [
        first["unit"],
        first["pinning"],
        "%s run%s each" % ("/".join(map(str, runs)), "" if runs == [1] else "s"),
    ]
    if first["peer"]:
        facts.append("ratio: to %s" % first["peer"])
    lines = ["**%s** (%s)." % (_text(name), _text("; ".join(facts)))]
    if first["note"]:
        lines[-1] += " " + _text(first["note"]) + "."
    lines += [
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
    ]
    header = ["Contender", "Style", "Median", "Ratio", "vs best peer", "Goal", "Met"]
    body = [header]
    for row in rows:
        body.append([
            ("**%s**" if row["ours"] else "%s") % _text(row["contender"]),
            _text(row["style"]) if row["style"] != "-" else "—",
            _figure(row["median"]),
            _times(row["ratio"]),
            _times(row["best_ratio"]),
            "; ".join(_text(goal["text"]) for goal in row["goals"]) or "—",
            "; ".join(_verdict(goal["met"]) for goal in row["goals"]) or "—",
        ])  # fmt: skip
    for cells in body:
        lines.append("   * - " + cells[0])
        lines += ["     - " + cell for cell in cells[1:]]
    return lines + [""]


def _text(value: str) -> str:
    """Plain text inside rst: no markup characters left active."""
    for char in "\\*`|_":
        value = value.replace(char, "\\" + char)
    return value


def _figure(value: float) -> str:
    if abs(value) >= 100:
        return "{:,.0f}".format(value)
    return "%.3g" % value


def _times(value: Optional[float]) -> str:
    return "—" if value is None else "%.2f×" % value


def _verdict(met: Optional[bool]) -> str:
    return {True: "met", False: "**missed**", None: "peer not measured"}[met]


def _date(stamp: str) -> str:
    when = datetime.datetime.fromisoformat(stamp).astimezone(datetime.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _quick(run: Run) -> bool:
    return any(document["quick"] for document in run)


def splice(page: str, generated: str) -> str:
    """`page` with its text between the markers (markers included) replaced."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise SystemExit("the page has no %r ... %r markers" % (BEGIN, END))
    return page[:start] + generated + page[page.index("\n", end) + 1 :]


# -- the chart ----------------------------------------------------------------------------------


def bars(run: Run) -> List[Dict[str, Any]]:
    """One bar per ftcore row that has a best peer: label, ratio, goal positions, verdict."""
    out = []
    for document in run:
        for name, rows in workloads(document):
            peers = {row["contender"]: row for row in rows if not row["ours"]}
            for row in rows:
                if not row["ours"] or row["best_ratio"] is None:
                    continue
                style = "" if row["style"] == "-" else " (%s)" % row["style"]
                goals = [_goal_on_best(goal, row, peers) for goal in row["goals"]]
                out.append({
                    "label": "%s · %s · %s%s" % (document["group"], name, row["contender"], style),
                    "ratio": row["best_ratio"],
                    "goals": [g for g in goals if g is not None],
                    "met": row["met"],
                })  # fmt: skip
    return out


def _goal_on_best(
    goal: Dict[str, Any], row: Dict[str, Any], peers: Dict[str, Dict[str, Any]]
) -> Optional[float]:
    """Where a goal sits on the row's best-peer scale: a goal of `r` times peer P is met when
    the row is at least `r` times P's own ratio to the best peer."""
    peer = peers.get(goal["peer"] or "")
    if peer is None or peer["best_ratio"] is None:
        return None
    if goal["ratio"] is not None:
        return float(goal["ratio"] * peer["best_ratio"])
    if goal["extra"] is None:
        return None
    # "at most peer + extra" (a time): the best peer's time over that bound
    best = peers[row["best_peer"]]["median"]
    return float(best / (peer["median"] + goal["extra"]))


def draw(run: Run, path: str) -> bool:
    """Draw the chart to `path`; False when there is nothing to draw."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("bench/report.py draws with matplotlib: pip install -e '.[dev]'") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    items = bars(run)
    if not items:
        return False
    colours = {True: "#3a7d44", False: "#c0392b", None: "#8c8c8c"}
    figure, axes = pyplot.subplots(figsize=(7, 0.3 * len(items) + 1.2))
    positions = list(range(len(items)))[::-1]
    ratios = [item["ratio"] for item in items]
    axes.barh(positions, ratios, color=[colours[item["met"]] for item in items], height=0.7)
    for position, item in zip(positions, items):
        for goal in item["goals"]:
            axes.plot([goal, goal], [position - 0.42, position + 0.42], color="black", lw=1.6)
        axes.text(item["ratio"] * 1.03, position, "%.2f×" % item["ratio"], va="center", fontsize=7)
    axes.set_xscale("log")
    values = ratios + [g for item in items for g in item["goals"]]
    axes.set_xlim(min(min(values) * 0.7, 0.5), max(max(values) * 1.5, 2.0))
    ticks = [
        t
        for t in (0.01, 0.03, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16)
        if axes.get_xlim()[0] <= t <= axes.get_xlim()[1]
    ]
    axes.set_xticks(ticks)
    axes.set_xticklabels(["%g×" % t for t in ticks])
    axes.axvline(1.0, color="black", lw=0.8, ls="--")
    axes.set_yticks(positions)
    axes.set_yticklabels([item["label"] for item in items], fontsize=7)
    axes.set_xlabel("ftcore's median over the best peer's (above 1: ftcore does better)")
    title = "ftcore beside its best peer, %s" % _date(min(d["date"] for d in run))
    axes.set_title(title + (" (--quick smoke run)" if _quick(run) else ""), fontsize=10)
    axes.legend(handles=[
        Patch(color=colours[True], label="every goal met"),
        Patch(color=colours[False], label="a goal missed"),
        Patch(color=colours[None], label="no goal"),
        Line2D([0], [0], color="black", lw=1.6, label="goal"),
    ], loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)  # fmt: skip
    axes.grid(axis="x", which="major", alpha=0.3)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # bbox_inches="tight": the figure grows to hold the long row labels and the legend
    figure.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    pyplot.close(figure)
    return True


# -- main ---------------------------------------------------------------------------------------


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="the JSON files of one run")
    parser.add_argument("--rst", default=os.path.join(ROOT, "docs", "results.rst"))
    parser.add_argument("--charts", default=os.path.join(ROOT, "docs", "_static", "bench"))
    args = parser.parse_args(argv)
    run = load(args.directory)
    chart_path = os.path.join(args.charts, CHART)
    drawn = draw(run, chart_path)
    relative = os.path.relpath(chart_path, os.path.dirname(os.path.abspath(args.rst)))
    with open(args.rst, encoding="utf-8") as handle:
        page = handle.read()
    page = splice(page, render(run, relative.replace(os.sep, "/") if drawn else None))
    with open(args.rst, "w", encoding="utf-8") as handle:
        handle.write(page)
    print("wrote %s%s from %d files" % (args.rst, " and " + chart_path if drawn else "", len(run)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

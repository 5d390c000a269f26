"""Turn one suite run (``results/latest.json``) into the Markdown of docs/performance.md.

    python benchmarks/report.py                                   # print the blocks
    python benchmarks/report.py results/latest-x.json             # another run's file
    python benchmarks/report.py --update docs/performance.md      # rewrite the page's blocks
    python benchmarks/report.py --update docs/performance.md --chart docs/images/performance.png

The page holds the generated text between ``<!-- bench:NAME:begin -->`` and
``<!-- bench:NAME:end -->`` comments, for NAME in ``header``, ``table``, ``limits`` and
``goals``; ``--update`` replaces what is between each pair and leaves the rest of the page (its
prose, the past before/after sections) as it is. With ``--update``, the chart next to the JSON
file (``latest.png`` for ``latest.json``) is copied to ``docs/images/performance.png`` unless
``--chart`` names another place or ``--no-chart`` is given.

``run.py`` prints the same main and limit tables (``summary``) at the end of every run.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOAD_LEVELS = (0.25, 0.5, 0.9)
BLOCKS = ("header", "table", "limits", "goals")
LIMIT_LABEL = "socket+orjson"

Record = dict[str, Any]


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    quotient = a / b
    return f"{quotient:.3f}x" if quotient < 0.1 else f"{quotient:.2f}x"


class Results:
    """Look-ups over the records of one run (``run.py``'s ``Suite.records`` or its JSON)."""

    def __init__(self, records: Iterable[Record]) -> None:
        self.records = list(records)

    def find(self, workload: str, subject: str, n: int | None = None) -> Record | None:
        """The measured record (one with a median), or None."""
        for record in self.records:
            same = record["workload"] == workload and record["subject"] == subject
            if same and (n is None or record["n"] == n) and "median" in record:
                return record
        return None

    def pick(self, workload: str, subject: str, n: int | None = None) -> Record | None:
        """The measured record, else the one that says why it was not measured."""
        found = self.find(workload, subject, n)
        if found is not None:
            return found
        for record in self.records:
            same = record["workload"] == workload and record["subject"] == subject
            if same and (n is None or record["n"] == n):
                return record
        return None

    def by_label(self, label: str) -> Record | None:
        return next((r for r in self.records if r["label"] == label and "median" in r), None)

    def sizes(self, workload: str) -> list[int]:
        return sorted({r["n"] for r in self.records if r["workload"] == workload and r["n"]})

    def limit(self) -> Record | None:
        return self.find("limits", LIMIT_LABEL)

    def marginal(self, workload: str, subject: str) -> float | None:
        """KB per object from the RSS growth between the two smallest sizes (fixed costs cancel)."""
        records = sorted(
            (r for r in self.records if r["workload"] == workload and r["subject"] == subject),
            key=lambda r: r["n"],
        )
        records = [r for r in records if "rss_after" in r and "rss_before" in r][:2]
        if len(records) < 2:
            return None
        small, large = records
        grown = (large["rss_after"] - large["rss_before"]) - (
            small["rss_after"] - small["rss_before"]
        )
        return float(grown / (large["n"] - small["n"]) / 1024)


def value(record: Record | None, key: str = "median") -> float | None:
    if record is None or "median" not in record:
        return None
    found = record.get(key)
    return float(found) if isinstance(found, (int, float)) else None


def cell(record: Record | None, key: str = "median") -> str:
    """A figure (with the spread of the runs for the median), or why it is missing."""
    if record is None:
        return "-"
    if "median" not in record:
        status = str(record.get("status", ""))
        return status.split(":")[0] if status else "-"
    spread = (
        f" ±{record['spread'] * 100:.0f}%" if key == "median" and len(record["runs"]) > 1 else ""
    )
    return f"{fmt(value(record, key))}{spread}"


def cpu(record: Record | None, unit: str, *, server: bool = False) -> float | None:
    """The operator's (or the server's) CPU µs per event/object in this record, if measured."""
    return value(record, f"{'server_' if server else ''}cpu_us_per_{unit}")


def summary(records: Iterable[Record]) -> str:
    """The main table and the limit table (Markdown), and what was not measured."""
    results = Results(records)
    parts = [main_table(results)]
    limits = limit_table(results)
    if limits:
        parts.append(limits)
    # A figure skipped at first may be measured later in the run (latency needs N=10,000).
    failures = [
        r
        for r in results.records
        if r["status"] != "ok" and results.find(r["workload"], r["subject"], r["n"]) is None
    ]
    if failures:
        lines = ["Not measured:"]
        lines += [f"- {r['workload']} {r['label']} N={r['n']}: {r['status']}" for r in failures]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def main_table(results: Results) -> str:
    """One row per workload and size: figures, ratios, and the CPU time per unit of work."""
    lines = [
        "| workload | N | Kopf | trikopf | limit | trikopf/Kopf | trikopf/limit "
        "| CPU µs/unit Kopf | CPU µs/unit trikopf | CPU trikopf/Kopf "
        "| server CPU µs/unit (Kopf / trikopf runs) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    limit = results.limit()
    limit_rate = value(limit)

    def row(
        title: str,
        n: int | None,
        kopf: Record | None,
        tri: Record | None,
        *,
        unit: str | None,
        key: str = "median",
        scale: float = 1.0,
        limit_cell: str = "-",
        limit_ratio: str = "-",
    ) -> str:
        if scale != 1.0:
            kopf = _scaled(kopf, scale)
            tri = _scaled(tri, scale)
        kopf_cpu = cpu(kopf, unit) if unit else None
        tri_cpu = cpu(tri, unit) if unit else None
        servers = "-"
        if unit:
            pair = [cpu(kopf, unit, server=True), cpu(tri, unit, server=True)]
            if any(v is not None for v in pair):
                servers = " / ".join(fmt(v) for v in pair)
        return (
            f"| {title} | {f'{n:,}' if n else '-'} | {cell(kopf, key)} | {cell(tri, key)} "
            f"| {limit_cell} | {ratio(value(tri, key), value(kopf, key))} | {limit_ratio} "
            f"| {fmt(kopf_cpu)} | {fmt(tri_cpu)} | {ratio(tri_cpu, kopf_cpu)} | {servers} |"
        )

    for n in results.sizes("throughput"):
        kopf, tri = results.pick("throughput", "kopf", n), results.pick("throughput", "trikopf", n)
        lines.append(
            row(
                "raw watch events/s",
                n,
                kopf,
                tri,
                unit="event",
                limit_cell=fmt(limit_rate),
                limit_ratio=ratio(value(tri), limit_rate),
            )
        )
    for n in results.sizes("create"):
        kopf, tri = results.pick("create", "kopf", n), results.pick("create", "trikopf", n)
        lines.append(row("created objects/s", n, kopf, tri, unit="object"))
        lines.append(
            f"| requests per object | {n:,} | {cell(kopf, 'requests_per_object')} "
            f"| {cell(tri, 'requests_per_object')} | - | - | - | - | - | - | - |"
        )
    for level in LOAD_LEVELS:
        percent = int(level * 100)
        kopf = results.by_label(f"kopf@{percent}%")
        tri = results.by_label(f"trikopf@{percent}%")
        if kopf is None and tri is None:
            continue
        rates = " / ".join(
            f"{name} {fmt(r['rate'])}/s" for name, r in (("Kopf", kopf), ("trikopf", tri)) if r
        )
        lines.append(
            f"| latency at {percent}% load: {rates} | - | - | - | - | - | - | - | - | - | - |"
        )
        for key in ("p50", "p99", "max"):
            lines.append(
                row(
                    f"latency {key} ms at {percent}% load",
                    None,
                    kopf,
                    tri,
                    unit="event" if key == "p50" else None,
                    key=key,
                )
            )
    for workload, title in (("memory-idle", "idle"), ("memory-daemon", "with a daemon")):
        for n in results.sizes(workload):
            kopf, tri = results.pick(workload, "kopf", n), results.pick(workload, "trikopf", n)
            lines.append(
                row(f"KB per object, {title}", n, kopf, tri, unit="object", scale=1 / 1024)
            )
    for workload, title in (("memory-idle", "idle"), ("memory-daemon", "with a daemon")):
        kopf_kb = results.marginal(workload, "kopf")
        tri_kb = results.marginal(workload, "trikopf")
        if kopf_kb is not None or tri_kb is not None:
            lines.append(
                f"| KB per object, {title}, marginal (between the two smallest N) | - "
                f"| {fmt(kopf_kb)} | {fmt(tri_kb)} | - | {ratio(tri_kb, kopf_kb)} | - "
                "| - | - | - | - |"
            )
    for n in results.sizes("startup"):
        kopf, tri = results.pick("startup", "kopf", n), results.pick("startup", "trikopf", n)
        lines.append(row("startup to all resumed, s", n, kopf, tri, unit="object"))
    return "\n".join(lines)


def _scaled(record: Record | None, scale: float) -> Record | None:
    if record is None or "median" not in record:
        return record
    return dict(record, median=record["median"] * scale)


def limit_table(results: Results) -> str:
    """The no-framework readers: rate, and CPU µs per event of the reader's own process."""
    limits = [r for r in results.records if r["workload"] == "limits" and "median" in r]
    if not limits:
        return ""
    limit = results.limit()
    limit_rate = value(limit)
    limit_cpu = cpu(limit, "event")
    # trikopf's raw watch figure at the largest size that has one (the limit's own N by default).
    tri = _largest(results, "throughput", "trikopf", having="cpu_us_per_event")
    lines = [
        "| limit reader (no framework) | N | events/s | vs socket+orjson | CPU µs/event "
        "| trikopf's CPU µs/event ÷ this |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    tri_cpu = cpu(tri, "event")
    for record in limits:
        events = record["unit"] == "events/s"
        own = cpu(record, "event" if events else "patch")
        lines.append(
            f"| {record['label']} | {record['n']:,} | {cell(record)} "
            f"| {ratio(record['median'], limit_rate) if events else '-'} | {fmt(own)} "
            f"| {ratio(tri_cpu, own) if events and record['subject'] != 'socket-noparse' else '-'} |"
        )
    if tri is not None and tri_cpu is not None:
        lines.append("")
        lines.append(
            f"trikopf's CPU per event: {fmt(tri_cpu)} µs at N={tri['n']:,} (raw watch events), "
            f"against {fmt(limit_cpu)} µs for the plain socket with orjson."
        )
    return "\n".join(lines)


def _largest(
    results: Results, workload: str, subject: str, *, having: str = "median"
) -> Record | None:
    measured = [
        r
        for r in results.records
        if r["workload"] == workload and r["subject"] == subject and "median" in r and having in r
    ]
    return max(measured, key=lambda r: r["n"]) if measured else None


def _common_size(results: Results, workload: str, prefer: int = 10_000) -> int | None:
    """N=``prefer`` if both frameworks have it, else the largest size both have."""
    both = [
        n
        for n in results.sizes(workload)
        if results.find(workload, "kopf", n) and results.find(workload, "trikopf", n)
    ]
    if prefer in both:
        return prefer
    return max(both) if both else None


def _divide(a: Record | None, b: Record | None) -> float:
    top, bottom = value(a), value(b)
    if top is None or not bottom:
        return math.nan
    return top / bottom


def goals_table(results: Results) -> str:
    """The issue's goals, each computed from this run's figures, with what exactly is compared."""
    lines = ["| goal | compared | figure | met |", "|---|---|---:|---|"]

    def met(ok: bool | None) -> str:
        return "-" if ok is None else ("met" if ok else "no")

    n = _common_size(results, "throughput")
    if n is None:
        lines.append("| raw watch throughput ≥ 50x Kopf | no common size measured | - | - |")
    else:
        tri, kopf = results.find("throughput", "trikopf", n), results.find("throughput", "kopf", n)
        times = _divide(tri, kopf)
        lines.append(
            f"| raw watch throughput ≥ 50x Kopf | events/s, medians at N={n:,} "
            f"| {times:.1f}x | {met(times >= 50)} |"
        )
    limit = results.limit()
    tri = results.find("throughput", "trikopf", limit["n"]) if limit else None
    tri = tri or _largest(results, "throughput", "trikopf")
    if limit is None or tri is None:
        lines.append(
            "| raw watch throughput ≥ 50% of socket+orjson | not measured in this run | - | - |"
        )
    else:
        share = _divide(tri, limit)
        lines.append(
            f"| raw watch throughput ≥ 50% of socket+orjson | trikopf's events/s at "
            f"N={tri['n']:,} ÷ the plain socket with orjson at N={limit['n']:,} "
            f"| {share * 100:.0f}% | {met(share >= 0.5)} |"
        )
    versus_kopf, versus_limit, create_versus_kopf = _cpu_goal_rows(results)
    if versus_kopf:
        lines.insert(3, versus_kopf)  # after the row of the goal it measures again
    if versus_limit:
        lines.append(versus_limit)
    n = _common_size(results, "create")
    if n is None:
        lines.append("| change handling ≥ 10x Kopf | no common size measured | - | - |")
    else:
        tri, kopf = results.find("create", "trikopf", n), results.find("create", "kopf", n)
        times = _divide(tri, kopf)
        lines.append(
            f"| change handling ≥ 10x Kopf | created objects/s (status written), medians "
            f"at N={n:,} | {times:.1f}x | {met(times >= 10)} |"
        )
    if create_versus_kopf:
        lines.append(create_versus_kopf)
    half = results.by_label("trikopf@50%")
    if half is None:
        lines.append("| latency p99 < 5 ms at 50% load | not measured in this run | - | - |")
    else:
        p99 = value(half, "p99")
        lines.append(
            f"| latency p99 < 5 ms at 50% load | trikopf's p99 at {fmt(half['rate'])} events/s "
            f"(half its own N=10,000 rate), median of the runs | {fmt(p99)} ms "
            f"| {met(p99 is not None and p99 < 5)} |"
        )
    for workload, goal, limit_kb, what in (
        ("memory-daemon", "≤ 5 KB per object with a daemon", 5.0, "with one async daemon"),
        (
            "memory-idle",
            "≤ 1 KB per idle object beyond its essence",
            1.0,
            "idle, handled once (the essence is stored on the server, in an annotation, so "
            "nothing is subtracted)",
        ),
    ):
        kb = results.marginal(workload, "trikopf")
        if kb is not None:
            sizes = [r["n"] for r in results.records if r["workload"] == workload]
            low, high = sorted(set(sizes))[:2]
            compared = f"RSS per object {what}, marginal between N={low:,} and N={high:,}"
        else:
            largest = _largest(results, workload, "trikopf")
            if largest is None:
                lines.append(f"| {goal} | not measured in this run | - | - |")
                continue
            kb = largest["median"] / 1024
            compared = f"RSS per object {what}, at N={largest['n']:,}"
        lines.append(f"| {goal} | {compared} | {fmt(kb)} KB | {met(kb <= limit_kb)} |")
    return "\n".join(lines)


def _cpu_goal_rows(results: Results) -> tuple[str, str, str]:
    """The two raw-watch goals again by CPU time per event, which a loaded machine moves less.

    When both processes are bound by one core each, the rate ratio is the inverse CPU ratio.
    Three rows (raw events versus Kopf, versus the limit; created objects versus Kopf), each
    empty if not measured.
    """
    rows = ["", "", ""]
    key = "cpu_us_per_event"
    n = _common_size(results, "throughput")
    tri = results.find("throughput", "trikopf", n) if n else None
    kopf = results.find("throughput", "kopf", n) if n else None
    tri_cpu, kopf_cpu = cpu(tri, "event"), cpu(kopf, "event")
    if tri_cpu and kopf_cpu:
        times = kopf_cpu / tri_cpu
        rows[0] = (
            f"| the same, by CPU time | Kopf's CPU µs per event ÷ trikopf's, at N={n:,} "
            f"| {times:.1f}x | {'met' if times >= 50 else 'no'} |"
        )
    limit = results.limit()
    tri = _largest(results, "throughput", "trikopf", having=key)
    tri_cpu, limit_cpu = cpu(tri, "event"), cpu(limit, "event")
    if tri is not None and limit is not None and tri_cpu and limit_cpu:
        share = limit_cpu / tri_cpu
        rows[1] = (
            f"| the same, by CPU time | the plain socket with orjson's CPU µs per event ÷ "
            f"trikopf's at N={tri['n']:,} | {share * 100:.0f}% | {'met' if share >= 0.5 else 'no'} |"
        )
    n = _common_size(results, "create")
    tri = results.find("create", "trikopf", n) if n else None
    kopf = results.find("create", "kopf", n) if n else None
    tri_cpu, kopf_cpu = cpu(tri, "object"), cpu(kopf, "object")
    if tri_cpu and kopf_cpu:
        times = kopf_cpu / tri_cpu
        rows[2] = (
            f"| the same, by CPU time | Kopf's CPU µs per created object ÷ trikopf's, at "
            f"N={n:,} | {times:.1f}x | {'met' if times >= 10 else 'no'} |"
        )
    return rows[0], rows[1], rows[2]


def _runs(repeat: object) -> str:
    return "1 run" if repeat == 1 else f"{repeat if isinstance(repeat, int) else '?'} runs"


def header(meta: dict[str, Any]) -> str:
    """One paragraph: how, when, where and with what the run was made."""
    options = meta.get("options", {})
    how = "`--full` sizes" if options.get("full") else "the default sizes"
    workloads = options.get("workloads") or []
    which = "every workload" if len(workloads) >= 6 else f"the workloads {', '.join(workloads)}"
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    date = str(meta.get("date", "unknown date"))
    day, _, clock = date.partition("T")
    minutes = meta.get("seconds")
    took = "an unknown time"
    if isinstance(minutes, (int, float)):
        took = f"{minutes:.0f} s" if minutes < 90 else f"{minutes / 60:.0f} minutes"
    environment = meta.get("environment") or {}
    env = (
        " Environment: " + ", ".join(f"`{k}={v}`" for k, v in environment.items()) + "."
        if environment
        else ""
    )
    loads = meta.get("load_average") or []
    load = (
        f" The 1-minute load average was {loads[0]} at the start and {loads[1]} at the end"
        f" ({meta.get('machine', 'machine unknown')}): anything above what the"
        " suite itself uses is other work, which widens the spreads and lowers the rates,"
        " not the CPU figures."
        if len(loads) == 2 and None not in loads
        else ""
    )
    commit, _, dirty = str(meta.get("commit", "unknown")).partition(" ")
    dirty = f" {dirty}" if dirty else ""
    budget = f" of {options['budget']:.0f} s" if isinstance(options.get("budget"), float) else ""
    return (
        f"The run below is `benchmarks/run.py` (what `nox -s bench` runs) with {which}, {how}, "
        f"{_runs(options.get('repeat'))} per figure (fewer where the time budget{budget} says "
        "so), "
        f"on {day} at {clock[:5]} UTC, at commit `{commit}`{dirty}. "
        f"Machine: {meta.get('machine', 'unknown')}; {meta.get('system', 'unknown')}; "
        f"Python {meta.get('python', 'unknown')}. Versions: {versions}. "
        f"The suite took {took}.{load}{env}"
    )


def blocks(document: dict[str, Any]) -> dict[str, str]:
    """The page's generated blocks, by marker name."""
    results = Results(document["records"])
    return {
        "header": header(document.get("meta", {})),
        "table": main_table(results),
        "limits": limit_table(results) or "(the `limits` workload was not run)",
        "goals": goals_table(results),
    }


def update(page: str, generated: dict[str, str]) -> str:
    """Replace the text between each pair of markers in ``page``; every pair must be there."""
    for name, text in generated.items():
        pattern = re.compile(
            rf"(<!-- bench:{name}:begin -->\n)(?:.*?\n)?(<!-- bench:{name}:end -->)", re.DOTALL
        )
        if len(pattern.findall(page)) != 1:
            raise ValueError(f"the page needs exactly one pair of bench:{name} markers")
        page = pattern.sub(lambda m, t=text: m.group(1) + t + "\n" + m.group(2), page)
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="?", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--update", type=Path, metavar="PAGE", help="rewrite the page's blocks")
    parser.add_argument(
        "--chart",
        type=Path,
        default=HERE.parent / "docs" / "images" / "performance.png",
        help="where --update copies the run's PNG",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not copy the chart")
    args = parser.parse_args(argv)
    document = json.loads(args.results.read_text())
    generated = blocks(document)
    if args.update is None:
        for name in BLOCKS:
            print(f"<!-- bench:{name} -->\n{generated[name]}\n")
        return 0
    args.update.write_text(update(args.update.read_text(), generated))
    print(f"updated {args.update} from {args.results}")
    png = args.results.with_suffix(".png")
    if not args.no_chart:
        if png.exists():
            shutil.copyfile(png, args.chart)
            print(f"copied {png} to {args.chart}")
        else:
            print(f"no chart at {png}: {args.chart} left as it was", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

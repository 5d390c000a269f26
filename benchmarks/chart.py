"""Draw the results of one suite run (``results/latest.json``) as one PNG with six panels."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLOURS = {"kopf": "#c0504d", "trikopf": "#4f81bd", "limit": "#9bbb59"}


def _records(document: dict[str, Any], workload: str) -> list[dict[str, Any]]:
    return [r for r in document["records"] if r["workload"] == workload and "median" in r]


def _bars(ax: Any, document: dict[str, Any], workload: str, scale: float = 1.0) -> None:
    records = _records(document, workload)
    sizes = sorted({r["n"] for r in records})
    subjects = [s for s in ("kopf", "trikopf") if any(r["subject"] == s for r in records)]
    width = 0.8 / max(1, len(subjects))
    for i, subject in enumerate(subjects):
        xs, ys, errs = [], [], []
        for j, n in enumerate(sizes):
            for r in records:
                if r["subject"] == subject and r["n"] == n:
                    xs.append(j + i * width)
                    ys.append(r["median"] * scale)
                    errs.append(
                        [[(r["median"] - r["min"]) * scale], [(r["max"] - r["median"]) * scale]]
                    )
        if xs:
            low = [e[0][0] for e in errs]
            high = [e[1][0] for e in errs]
            ax.bar(xs, ys, width, label=subject, color=COLOURS[subject], yerr=[low, high])
    ax.set_xticks([j + width * (len(subjects) - 1) / 2 for j in range(len(sizes))])
    ax.set_xticklabels([f"N={n:,}" for n in sizes])
    if subjects:
        ax.legend(fontsize=8)


def _log_if_data(ax: Any, axis: str = "y") -> None:
    """Log scale when the panel has positive data; otherwise say it was not measured."""
    has_data = any(
        getattr(patch, "get_height", lambda: 0)() > 0
        or getattr(patch, "get_width", lambda: 0)() > 0
        for patch in ax.patches
    )
    if has_data:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    else:
        ax.text(0.5, 0.5, "not measured yet", ha="center", va="center", transform=ax.transAxes)


CPU_PANELS = (
    ("throughput", "event", "raw watch event"),
    ("create", "object", "created object"),
    ("startup", "object", "resumed object"),
)


def _cpu(ax: Any, document: dict[str, Any], *, server: bool) -> None:
    """CPU µs per unit of work at N=10,000 where measured (else the largest N measured); the
    limit reader's own CPU per event beside the raw events."""
    key = "server_cpu_us_per_{}" if server else "cpu_us_per_{}"
    subjects = ["kopf", "trikopf"] if server else ["kopf", "trikopf", "limit"]
    width = 0.8 / len(subjects)
    for i, subject in enumerate(subjects):
        xs, ys = [], []
        for j, (workload, unit, _) in enumerate(CPU_PANELS):
            if subject == "limit":
                found = [r for r in _records(document, "limits") if r["subject"] == "socket+orjson"]
                if workload != "throughput":
                    found = []
            else:
                found = [
                    r
                    for r in _records(document, workload)
                    if r["subject"] == subject and key.format(unit) in r
                ]
            found = [r for r in found if key.format(unit) in r]
            if found:
                xs.append(j + i * width)
                chosen = max(found, key=lambda r: (r["n"] == 10_000, r["n"]))
                ys.append(chosen[key.format(unit)])
        if xs:
            ax.bar(xs, ys, width, label=subject, color=COLOURS[subject])
    ax.set_xticks([j + width * (len(subjects) - 1) / 2 for j in range(len(CPU_PANELS))])
    ax.set_xticklabels([label for _, _, label in CPU_PANELS], fontsize=8)
    _log_if_data(ax)
    if ax.patches:
        ax.legend(fontsize=8)
    whose = "stream server" if server else "operator"
    ax.set_title(f"{whose} CPU µs per event/object (log)")


def draw(document: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(20, 9))
    meta = document["meta"]
    fig.suptitle(
        f"trikopf benchmarks — {meta['date']} — {meta['machine']} — Python {meta['python']} — "
        f"Kopf {meta['versions'].get('kopf')}",
        fontsize=10,
    )

    ax = axes[0][0]
    _bars(ax, document, "throughput")
    limit = next((r for r in _records(document, "limits") if r["subject"] == "socket+orjson"), None)
    if limit:
        ax.axhline(limit["median"], color=COLOURS["limit"], linestyle="--", label="socket+orjson")
        ax.legend(fontsize=8)
    _log_if_data(ax)
    ax.set_title("raw watch throughput (events/s, log)")

    ax = axes[0][1]
    limits = _records(document, "limits")
    ax.barh([r["label"] for r in limits], [r["median"] for r in limits], color=COLOURS["limit"])
    _log_if_data(ax, "x")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.invert_yaxis()
    ax.set_title("the limit: no framework (events/s, log)")
    ax.tick_params(axis="y", labelsize=8)

    ax = axes[0][2]
    _bars(ax, document, "create")
    _log_if_data(ax)
    ax.set_title("change handling (created objects/s, log)")

    ax = axes[1][0]
    latency = _records(document, "latency")
    labels = [r["label"] for r in latency]
    xs = range(len(latency))
    ax.bar(
        xs,
        [r["p99"] for r in latency],
        color=[COLOURS.get(r["subject"], "grey") for r in latency],
        label="p99",
    )
    ax.scatter(xs, [r["p50"] for r in latency], color="black", marker="_", s=200, label="p50")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=30, fontsize=8)
    _log_if_data(ax)
    ax.set_title("latency, event → handler (ms, log)")
    ax.legend(fontsize=8)

    ax = axes[1][1]
    memory = [*_records(document, "memory-idle"), *_records(document, "memory-daemon")]
    labels = [
        f"{r['subject']} {'daemon' if r['workload'].endswith('daemon') else 'idle'}\nN={r['n']:,}"
        for r in memory
    ]
    ax.bar(
        range(len(memory)),
        [r["median"] / 1024 for r in memory],
        color=[COLOURS.get(r["subject"], "grey") for r in memory],
    )
    ax.set_xticks(range(len(memory)))
    ax.set_xticklabels(labels, fontsize=7, rotation=30)
    ax.set_title("memory per object (KB)")

    ax = axes[1][2]
    _bars(ax, document, "startup")
    ax.set_title("startup to every object resumed (s)")

    _cpu(axes[0][3], document, server=False)
    _cpu(axes[1][3], document, server=True)

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


if __name__ == "__main__":
    source = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results/latest.json"
    )
    target = source.with_suffix(".png")
    print(draw(json.loads(source.read_text()), target))

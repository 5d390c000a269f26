"""The report generator turns a run's records into the performance page's blocks (no timing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks import load_benchmark_module

report = load_benchmark_module("report.py")


def record(workload: str, subject: str, n: int | None, median: float, **extra: Any) -> Any:
    runs = [{"value": median, "unit": "u", **extra}, {"value": median, "unit": "u", **extra}]
    return {
        "workload": workload,
        "subject": subject,
        "label": extra.pop("label", subject),
        "n": n,
        "status": "ok",
        "runs": runs,
        "unit": "events/s",
        "median": median,
        "min": median,
        "max": median,
        "spread": 0.0,
        **extra,
    }


def memory(workload: str, subject: str, n: int, per_object: float) -> Any:
    before = 40_000_000
    return record(
        workload,
        subject,
        n,
        per_object,
        rss_before=before,
        rss_after=before + 1_000_000 + int(per_object * n),
    )


def run_records(
    *, tri_rate: float, tri_p99: float, daemon_bytes: float, tri_object_cpu: float = 400.0
) -> list[Any]:
    return [
        record("limits", "socket+orjson", 50_000, 100_000.0, cpu_us_per_event=8.0),
        record("throughput", "kopf", 10_000, 1_000.0, cpu_us_per_event=900.0),
        record(
            "throughput",
            "trikopf",
            10_000,
            tri_rate,
            cpu_us_per_event=24.0,
            server_cpu_us_per_event=3.0,
        ),
        record("throughput", "trikopf", 50_000, tri_rate, cpu_us_per_event=20.0),
        record("create", "kopf", 10_000, 300.0, cpu_us_per_object=2_000.0),
        record("create", "trikopf", 10_000, 2_400.0, cpu_us_per_object=tri_object_cpu),
        record("latency", "trikopf", 1_000, tri_p99, label="trikopf@50%", p99=tri_p99, rate=5000.0),
        memory("memory-daemon", "trikopf", 1_000, daemon_bytes),
        memory("memory-daemon", "trikopf", 10_000, daemon_bytes),
        memory("memory-idle", "trikopf", 1_000, 900.0),
        memory("memory-idle", "trikopf", 10_000, 900.0),
    ]


def goal_rows(records: list[Any]) -> dict[str, list[str]]:
    table = report.goals_table(report.Results(records))
    rows = [line.strip("|").split(" | ") for line in table.splitlines()[2:]]
    return {row[0].strip(): [cell.strip() for cell in row[1:]] for row in rows}


def test_goals_are_met_or_not_by_the_figures_of_the_run() -> None:
    fast = goal_rows(run_records(tri_rate=60_000.0, tri_p99=3.0, daemon_bytes=4_000.0))
    slow = goal_rows(run_records(tri_rate=30_000.0, tri_p99=7.0, daemon_bytes=40_000.0))

    assert fast["raw watch throughput ≥ 50x Kopf"][1:] == ["60.0x", "met"]
    assert slow["raw watch throughput ≥ 50x Kopf"][1:] == ["30.0x", "no"]
    assert fast["raw watch throughput ≥ 50% of socket+orjson"][1:] == ["60%", "met"]
    assert slow["raw watch throughput ≥ 50% of socket+orjson"][1:] == ["30%", "no"]
    assert fast["change handling ≥ 10x Kopf"][1:] == ["8.0x", "no"]
    assert fast["latency p99 < 5 ms at 50% load"][1:] == ["3.00 ms", "met"]
    assert slow["latency p99 < 5 ms at 50% load"][1:] == ["7.00 ms", "no"]
    assert fast["≤ 5 KB per object with a daemon"][1:] == ["3.91 KB", "met"]
    assert slow["≤ 5 KB per object with a daemon"][1:] == ["39.1 KB", "no"]
    assert fast["≤ 1 KB per idle object beyond its essence"][1:] == ["0.88 KB", "met"]
    # Each row names what it compares: the sizes the figure comes from.
    assert "N=10,000" in fast["raw watch throughput ≥ 50x Kopf"][0]
    assert "N=1,000 and N=10,000" in fast["≤ 5 KB per object with a daemon"][0]


def test_goals_by_cpu_time_follow_the_goal_they_measure_again() -> None:
    records = run_records(tri_rate=60_000.0, tri_p99=3.0, daemon_bytes=4_000.0)
    table = report.goals_table(report.Results(records)).splitlines()[2:]
    firsts = [line.split(" | ")[0].strip("| ") for line in table]
    assert firsts[:5] == [
        "raw watch throughput ≥ 50x Kopf",
        "the same, by CPU time",
        "raw watch throughput ≥ 50% of socket+orjson",
        "the same, by CPU time",
        "change handling ≥ 10x Kopf",
    ]
    assert table[1].endswith("| 37.5x | no |")  # 900 µs ÷ 24 µs at N=10,000
    assert table[3].endswith("| 40% | no |")  # 8 µs ÷ 20 µs at N=50,000
    assert table[5].endswith("| 5.0x | no |")  # 2,000 µs ÷ 400 µs
    cheaper = run_records(tri_rate=1.0, tri_p99=3.0, daemon_bytes=1.0, tri_object_cpu=150.0)
    rows = report.goals_table(report.Results(cheaper)).splitlines()[2:]
    assert rows[5].endswith("| 13.3x | met |")


def test_goals_not_measured_in_the_run_say_so() -> None:
    only_kopf = [record("throughput", "kopf", 10_000, 1_000.0)]
    rows = goal_rows(only_kopf)
    assert rows["raw watch throughput ≥ 50x Kopf"] == ["no common size measured", "-", "-"]
    assert rows["latency p99 < 5 ms at 50% load"][0] == "not measured in this run"


def test_the_main_table_has_the_cpu_per_unit_of_each_framework_and_the_server() -> None:
    records = run_records(tri_rate=60_000.0, tri_p99=3.0, daemon_bytes=4_000.0)
    table = report.main_table(report.Results(records))
    row = next(line for line in table.splitlines() if line.startswith("| raw watch events/s | 10,"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[7:] == ["900", "24.0", "0.027x", "- / 3.00"]
    limits = report.limit_table(report.Results(records))
    # trikopf's CPU per event at the limit's size, N=50,000, against the reader's.
    assert "| socket+orjson | 50,000 | 100,000 ±0% | 1.00x | 8.00 | 2.50x |" in limits
    assert "trikopf's CPU per event: 20.0 µs at N=50,000" in limits


def test_update_rewrites_only_the_marked_blocks_and_again_gives_the_same_page() -> None:
    page = "\n".join(
        [
            "# Performance",
            "prose before",
            *(
                f"<!-- bench:{name}:begin -->\nold {name}\n<!-- bench:{name}:end -->"
                for name in report.BLOCKS
            ),
            "prose after",
            "",
        ]
    )
    document = {
        "meta": {"date": "2026-11-25T23:00:00+00:00", "commit": "abc1234", "seconds": 600},
        "records": run_records(tri_rate=60_000.0, tri_p99=3.0, daemon_bytes=4_000.0),
    }
    generated = report.blocks(document)
    once = report.update(page, generated)
    assert report.update(once, generated) == once
    assert once.startswith("# Performance\nprose before\n")
    assert once.endswith("prose after\n")
    assert "old " not in once
    for name, text in generated.items():
        assert f"<!-- bench:{name}:begin -->\n{text}\n<!-- bench:{name}:end -->" in once
    assert "commit `abc1234`" in generated["header"]


def test_update_refuses_a_page_without_the_markers() -> None:
    with pytest.raises(ValueError, match="bench:table"):
        report.update("no markers here", {"table": "x"})


def test_the_command_updates_the_page_and_copies_the_chart(tmp_path: Path) -> None:
    results = tmp_path / "latest.json"
    document = {"meta": {}, "records": run_records(tri_rate=1.0, tri_p99=1.0, daemon_bytes=1.0)}
    results.write_text(json.dumps(document))
    results.with_suffix(".png").write_bytes(b"\x89PNG chart")
    page = tmp_path / "performance.md"
    page.write_text(
        "".join(f"<!-- bench:{n}:begin -->\n<!-- bench:{n}:end -->\n" for n in report.BLOCKS)
    )
    chart = tmp_path / "performance.png"
    assert report.main([str(results), "--update", str(page), "--chart", str(chart)]) == 0
    assert chart.read_bytes() == b"\x89PNG chart"
    assert report.blocks(document)["goals"] in page.read_text()

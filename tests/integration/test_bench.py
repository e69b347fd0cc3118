"""The benchmark suite (bench/, docs/benchmarks.md) in its tiny `--smoke` sizes, run as its
user runs it (`python -m bench NAME --json`) on SQLite: every benchmark runs to the end and
prints the figures it promises, in the promised shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

FIGURES = {
    "transitions": ["transitions_per_s"],
    "timers": ["timeouts_fired_per_s", "lateness_p99_s"],
    "metrics": ["metrics_ms_at_100", "metrics_ms_at_1k"],
    "import": ["import_rows_per_s"],
    "http": ["get_work_order_rps", "post_contact_rps"],
    "delivery": ["sms_p50_ms", "sms_p90_ms", "sms_p99_ms", "sms_max_ms", "webhook_p50_ms",
                 "webhook_p90_ms", "webhook_p99_ms", "webhook_max_ms", "light_sms_p50_ms",
                 "light_sms_p99_ms", "light_webhook_p50_ms", "light_webhook_p99_ms",
                 "burst_sms_p50_ms",
                 "burst_sms_p99_ms", "burst_webhook_p50_ms", "burst_webhook_p99_ms",
                 "burst_last_sms_s", "delivered"],
}
KEYS = {"figure", "value", "unit", "baseline", "baseline_value", "ratio"}


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_without_a_name_it_lists_every_benchmark_with_a_line_of_description() -> None:
    done = bench()
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert sorted(names) == sorted(FIGURES)
    assert all(len(line.split()) > 3 for line in done.stdout.splitlines())


# http takes about 10 s even at the smoke size (two server start-ups, load rounds);
# delivery about 15 s (a server start-up, 4 work orders at 2/s, 10 at 20/s, a burst of 10).
@pytest.mark.parametrize("name", ["transitions", "timers", "metrics", "import", "http",
                                  "delivery"])
def test_a_benchmark_prints_its_figures_as_json(name: str) -> None:
    done = bench(name, "--smoke", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    assert set(report) == {"name", "figures"}
    assert report["name"] == name
    figures = report["figures"]
    assert [f["figure"] for f in figures] == FIGURES[name]
    for f in figures:
        assert set(f) == KEYS
        assert f["value"] > 0
        assert f["unit"]
        if f["baseline"] is None:
            assert f["baseline_value"] is None
            assert f["ratio"] is None
        else:
            assert f["baseline_value"] > 0
            assert f["ratio"] == pytest.approx(f["value"] / f["baseline_value"], rel=1e-3)
    if name == "delivery":  # every SMS and webhook arrived
        assert figures[-1]["ratio"] == 1

"""benchmarks/gpu_check.py cannot rot: its CPU mode runs every step that is not CUDA-only (a
renamed option or a moved function fails here: the whole run is slow, its cheap steps run in the
default suite), and its bookkeeping is checked on made-up outcomes: a failing step is recorded
and the next one runs, the goals are judged right."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
STEPS = ["environment", "gpu_tests", "throughput", "memory", "hpo", "paper_scale"]


def _benchmark(name: str) -> ModuleType:
    """A script of benchmarks/ as a module (they import each other as siblings)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def gpu_check() -> ModuleType:
    return _benchmark("gpu_check")


def test_the_cheap_steps_run_here(tmp_path: Path, gpu_check: ModuleType) -> None:
    # The default suite's share of the CPU run: environment, the memory estimates of both
    # studies' largest trials, the FLOP count, the peak table, the HPO benchmark's study files.
    ctx = gpu_check.Context(torch.device("cpu"), gpu_check.QUICK, tmp_path)
    steps = [s for s in gpu_check.STEPS if s[0] in ("environment", "memory")]
    assert gpu_check.run_all(ctx, steps, "cmd") == 0
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [(s["name"], s["status"]) for s in record["steps"]] == [
        ("environment", "passed"), ("memory", "skipped")]
    memory = record["steps"][1]["figures"]
    assert memory["demo"]["batch_size"] == 128 and memory["dnase"]["batch_size"] == 512
    assert 0 < memory["demo"]["estimate_bytes"] < memory["dnase"]["estimate_bytes"]
    assert gpu_check.flops_per_seq() == pytest.approx(0.868e9, rel=0.01)  # the paper net's step
    peaks = [gpu_check.bf16_peak_tflops(card) for card in (
        "NVIDIA H100 PCIe", "NVIDIA H100 80GB HBM3", "NVIDIA H200", "NVIDIA A100-SXM4-80GB",
        "NVIDIA GeForce RTX 4090")]
    assert peaks == [756.0, 989.0, 989.0, 312.0, None]
    hpo_throughput = _benchmark("hpo_throughput")
    data = tmp_path / "demo.h5"
    baseline = hpo_throughput.study_file(tmp_path, "baseline", data, False).read_text()
    service = hpo_throughput.study_file(tmp_path, "service", data, True).read_text()
    assert f'data = "{data}"' in baseline and 'type = "none"' in baseline
    assert 'name = "service"' in service and 'type = "asha"' in service


@pytest.mark.slow  # a pytest run, the benchmarks and a small study: minutes on two cores
def test_the_quick_cpu_run_reports_every_step(tmp_path: Path, gpu_check: ModuleType) -> None:
    out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_check.py"), "--device", "cpu", "--quick",
         "--out", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((out / "gpu_check.json").read_text())
    steps = {s["name"]: s for s in record["steps"]}
    assert list(steps) == STEPS
    assert {name: s["status"] for name, s in steps.items()} == {
        "environment": "passed", "gpu_tests": "skipped", "throughput": "passed",
        "memory": "skipped", "hpo": "passed", "paper_scale": "skipped",
    }
    assert record["all_passed"] is True
    assert steps["environment"]["figures"]["torch"] == torch.__version__
    # pytest ran (exit 0: the gpu mark still selects tests) and every CUDA test skipped
    tests = steps["gpu_tests"]["figures"]
    assert tests["exit_code"] == 0 and "skipped" in tests["summary"]
    assert "deselected" in (out / tests["log"]).read_text()
    speed = steps["throughput"]["figures"]
    assert speed["flops_per_seq"] == pytest.approx(0.868e9, rel=0.01)  # the paper net's step
    measured = {(r["batch"], r["path"]) for r in speed["rows"] if r.get("seq_per_s", 0) > 0}
    assert measured == {(4, "port"), (4, gpu_check.DEFAULT_PATH)}
    assert {r["path"] for r in speed["rows"] if r.get("skipped") == "no CUDA"} == {
        "eager bf16", "compile + graphs"}
    memory = steps["memory"]["figures"]
    assert steps["memory"]["detail"] == "no CUDA"
    assert 0 < memory["demo"]["estimate_bytes"] < memory["dnase"]["estimate_bytes"]
    runs = steps["hpo"]["figures"]["runs"]
    assert list(runs) == ["one at a time, no pruning", "service defaults"]
    assert all(r["seconds"] > 0 for r in runs.values())
    assert {g["status"] for g in record["goals"]} == {"not evaluated"}
    report = (out / "gpu_check.md").read_text()
    for step in steps.values():
        assert f"### {step['title']}" in report
    assert "- **not evaluated** graphs + bf16 >= 3x the port at batch 128: needs CUDA" in report


def test_a_failing_step_is_recorded_and_the_next_one_runs(tmp_path: Path,
                                                          gpu_check: ModuleType) -> None:
    def broken(ctx: Any, figures: dict[str, Any]) -> None:
        figures["partial"] = 1
        raise ValueError("boom\nsecond line")

    def fine(ctx: Any, figures: dict[str, Any]) -> None:
        figures["ok"] = True

    ctx = gpu_check.Context(torch.device("cpu"), gpu_check.QUICK, tmp_path)
    code = gpu_check.run_all(ctx, [("a", "Step A", broken), ("b", "Step B", fine)], "cmd")
    assert code == 1
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [(s["name"], s["status"], s["detail"], s["figures"]) for s in record["steps"]] == [
        ("a", "failed", "ValueError: boom", {"partial": 1}),
        ("b", "passed", "", {"ok": True}),
    ]
    assert "raise ValueError" in record["steps"][0]["traceback"]
    assert record["all_passed"] is False
    report = (tmp_path / "gpu_check.md").read_text()
    assert "exit code 1 (failed: a)" in report
    assert "| Step A | failed: ValueError: boom |" in report


def test_goals_are_judged_from_the_figures(gpu_check: ModuleType) -> None:
    mib = gpu_check.MIB

    def outcome(name: str, **figures: Any) -> Any:
        return gpu_check.Outcome(name, name, "passed", figures=figures)

    rows = [{"batch": 128, "path": "port", "seq_per_s": 10_000.0},
            {"batch": 128, "path": gpu_check.DEFAULT_PATH, "seq_per_s": 85_000.0},
            {"batch": 1024, "path": "port", "seq_per_s": 60_000.0},
            {"batch": 1024, "path": gpu_check.DEFAULT_PATH, "seq_per_s": 120_000.0}]
    outcomes = {
        "throughput": outcome("throughput", rows=rows, card="NVIDIA H100 80GB HBM3"),
        "memory": outcome("memory", demo={"estimate_bytes": 125 * mib, "measured_bytes": 100 * mib},
                          dnase={"estimate_bytes": 140 * mib, "measured_bytes": 100 * mib}),
        "hpo": outcome("hpo", ratio=4.0, best_difference=-0.001),
    }
    ctx = gpu_check.Context(torch.device("cuda"), gpu_check.FULL, Path("."))
    judged = [(g.status, g.detail) for g in gpu_check.goals(ctx, outcomes)]
    assert judged == [
        ("PASS", "8.50x (85,000 vs 10,000 seq/s)"),
        ("FAIL", "2.00x (120,000 vs 60,000 seq/s)"),
        ("PASS", "85,000 seq/s"),
        ("FAIL", "120,000 seq/s"),
        ("PASS", "estimate 125 MiB, measured 100 MiB (1.25x)"),
        ("FAIL", "estimate 140 MiB, measured 100 MiB (1.40x)"),
        ("FAIL", "4.00x trials/h, best value -0.0010"),  # more trials, a worse best value
    ]
    del outcomes["memory"]
    missing = gpu_check.goals(ctx, outcomes)[4]
    assert (missing.status, missing.detail) == ("not evaluated", "step not run")


def test_an_out_path_that_is_a_file_is_one_line_and_exit_2(
        tmp_path: Path, gpu_check: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    with pytest.raises(SystemExit) as stop:
        gpu_check.main(["--device", "cpu", "--out", str(taken)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists and is not a folder" in err

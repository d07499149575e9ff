"""GPU verification in one call: the CUDA tests, train throughput, memory estimates, packed HPO.

    python benchmarks/gpu_check.py --out DIR                       # one H200: about 7 minutes
    python benchmarks/gpu_check.py --out DIR --steps environment gpu_tests throughput memory hpo
    python benchmarks/gpu_check.py --out DIR2 --steps environment paper_scale # 2 calls: 10 min each
    python benchmarks/gpu_check.py --device cpu --quick --out DIR  # CI: tiny, CUDA parts skipped

Writes DIR/gpu_check.md and DIR/gpu_check.json (rewritten after every step, so a run cut short
still leaves its report) and DIR/gpu_tests.log. Each step is isolated: a failing one is recorded
with its error and the next one runs. Steps:

- environment: card, driver, CUDA and torch versions, whether an MPS control daemon is running;
- gpu_tests: `python -m pytest -m gpu` (on the CPU every test in it skips);
- throughput: the paper architecture (600 bp, 164 targets) at batch 128 and 1024 for the
  straightforward port, eager bf16, graphs + bf16 (the default) and compile + graphs: seq/s, the
  ratio to the port and the share of the card's dense bf16 peak (benchmarks/train_throughput.py);
- memory: a few training steps' peak (torch.cuda.max_memory_allocated) of the demo's and the
  dnase study's largest trial against hpo.packing's estimate;
- hpo: the demo study for a fixed budget, one trial at a time without pruning against the
  service's defaults (--trials-per-gpu auto, Hyperband) (benchmarks/hpo_throughput.py);
- paper_scale (CUDA only): the evaluation metrics on the card against scikit-learn's loop, and the
  dnase study on a synthetic file of Basset's shape for 90 s after its load: load time, host
  memory, first evaluation, trials (benchmarks/paper_scale.py, issue 26); about 4 minutes.

The goals (issue 17) come out as PASS/FAIL lines. The exit code is 0 when every step ran
without an error (skipped ones included), 1 otherwise; goals missed do not change it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import logging
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paper_scale
import torch
from hpo_throughput import compare
from metrics_throughput import compare as compare_metrics
from train_throughput import (
    bf16_peak_tflops,
    flops_per_seq,
    port_throughput,
    project_throughput,
    random_data,
)

from basset import (
    ArgParser,
    BassetData,
    JobParams,
    TrainOptions,
    make_demo,
    train,
    training_bytes,
    write_text_atomic,
)
from basset.data.h5read import Split
from hpo import packing
from hpo.config import PACKAGED_STUDIES, load_study

log = logging.getLogger("gpu_check")
REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
MEMORY_STEPS = 5  # 3 eager warm-up steps, the capture, one replay (basset.training.cuda_graphs)
# (sequence length, targets) of each study's data: the demo data's defaults, the compendium's
STUDY_SHAPES = {"demo": (200, 12), "dnase": (600, 164)}
SPEED_GOAL, SPEED_BATCHES = 3.0, (128, 1024)
H100_SEQ_PER_S = {128: 80_000, 1024: 150_000}
HPO_GOAL, MEMORY_TOLERANCE = 3.0, 0.30
DEFAULT_PATH = "graphs + bf16 (default)"
# name, the trainer's options (None: the port), CUDA only
PATHS: tuple[tuple[str, TrainOptions | None, bool], ...] = (
    ("port", None, False),
    ("eager bf16", TrainOptions(cuda_graphs=False), True),
    (DEFAULT_PATH, TrainOptions(), False),
    ("compile + graphs", TrainOptions(compile=True), True),  # the CPU compile alone takes ~20 s
)


@dataclass(frozen=True)
class Sizes:
    batch_sizes: tuple[int, ...]
    batches: int  # per timed pass
    repeats: int  # timed passes (epochs) per path, best kept
    hpo_budget: float  # seconds per HPO run (--timeout)
    hpo_seqs: int
    hpo_seq_len: int
    pytest_timeout: float
    paper_budget: float = 0.0  # seconds of the dnase study on the paper-scale file, after its load


FULL = Sizes(SPEED_BATCHES, 50, 2, 45.0, 6000, 200, 300.0, 150.0)
QUICK = Sizes((4,), 1, 1, 1.0, 300, 60, 120.0)


@dataclass
class Context:
    device: torch.device
    sizes: Sizes
    out: Path
    demo_data: Path | None = None  # the HPO step's data; None: made with basset.data.demo

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


class Skipped(Exception):
    """The step (or what is left of it) does not apply here."""


@dataclass
class Outcome:
    name: str
    title: str
    status: str = "not run"  # passed, failed, skipped
    detail: str = ""  # the error, or why it was skipped
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    traceback: str = ""


StepFn = Callable[[Context, dict[str, Any]], None]  # fills the figures; raises Skipped or fails


def require_cuda(ctx: Context) -> None:
    if not ctx.cuda:
        raise Skipped("no CUDA")


def release_cuda_memory() -> None:
    """Give cached blocks back: the next measurement (or HPO worker) sees the card free."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- the steps ------------------------------------------------------------------------------


def environment(ctx: Context, figures: dict[str, Any]) -> None:
    figures.update(
        host=platform.node(), python=platform.python_version(), torch=torch.__version__,
        cuda_build=torch.version.cuda, cpu_cores=os.cpu_count(),
        load_average=[round(v, 2) for v in os.getloadavg()], mps_running=packing.mps_running(),
        card="cpu",
    )
    if not ctx.cuda:
        return
    if not torch.cuda.is_available():
        raise RuntimeError(f"--device {ctx.device}: CUDA is not available to torch "
                           f"{torch.__version__} (built for CUDA {torch.version.cuda})")
    props = torch.cuda.get_device_properties(ctx.device)
    figures.update(
        card=props.name, memory_gib=round(props.total_memory / (1 << 30), 1),
        capability=f"{props.major}.{props.minor}", cudnn=torch.backends.cudnn.version(),
        driver=nvidia_smi("driver_version"), visible_gpus=torch.cuda.device_count(),
    )


def nvidia_smi(query: str) -> str:
    try:
        done = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"unknown ({err})"
    return done.stdout.splitlines()[0].strip() if done.returncode == 0 and done.stdout else (
        f"unknown (nvidia-smi exit {done.returncode})")


def gpu_tests(ctx: Context, figures: dict[str, Any]) -> None:
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rfE", "-p", "no:cacheprovider"]
    log_path = ctx.out / "gpu_tests.log"
    figures.update(command="python -m pytest -m gpu", log=log_path.name)
    # --device cpu means "as if there were no CUDA", also on a machine that has one
    env = os.environ if ctx.cuda else {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=ctx.sizes.pytest_timeout, check=False)
    except subprocess.TimeoutExpired as late:  # keep what it printed: which test hung
        write_text_atomic(log_path, _text(late.stdout) + _text(late.stderr))
        raise
    write_text_atomic(log_path, done.stdout + done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    summary = lines[-1].strip("= ") if lines else "(no output)"
    figures.update(exit_code=done.returncode, summary=summary,
                   failures=[line for line in lines if line.startswith(("FAILED ", "ERROR "))])
    if done.returncode != 0:  # 5: no test carries the gpu mark any more
        raise RuntimeError(f"pytest exit code {done.returncode}: {summary}")
    if not ctx.cuda:
        raise Skipped(f"no CUDA (pytest: {summary})")


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def throughput(ctx: Context, figures: dict[str, Any]) -> None:
    card = torch.cuda.get_device_name(ctx.device) if ctx.cuda else "cpu"
    flops, peak = flops_per_seq(), bf16_peak_tflops(card)
    figures.update(flops_per_seq=flops, card=card, peak_tflops=peak, batches=ctx.sizes.batches,
                   repeats=ctx.sizes.repeats, rows=[])
    if not ctx.cuda:
        figures["note"] = "On the CPU the default options train in fp32 without graphs (CUDA-only)."
    failed = 0
    for batch in ctx.sizes.batch_sizes:
        codes, targets = random_data(batch * ctx.sizes.batches)
        port: float | None = None
        for name, path_options, cuda_only in PATHS:
            row: dict[str, Any] = {"batch": batch, "path": name}
            figures["rows"].append(row)
            if cuda_only and not ctx.cuda:
                row["skipped"] = "no CUDA"
                continue
            release_cuda_memory()
            try:
                if path_options is None:
                    speed = port_throughput(codes, targets, batch, ctx.device, ctx.sizes.repeats)
                    port = speed
                else:
                    options = dataclasses.replace(path_options, device=str(ctx.device))
                    speed = project_throughput(codes, targets, batch, options, ctx.sizes.repeats)
            except Exception as err:  # recorded; the other paths still run
                record_error(row, err, f"{name} at batch {batch}")
                failed += 1
                continue
            row["seq_per_s"] = speed
            row["x_port"] = speed / port if port else None
            row["peak_share"] = speed * flops / (peak * 1e12) if peak else None
    if failed:
        raise RuntimeError(f"{failed} of {len(figures['rows'])} measurements failed")


def memory(ctx: Context, figures: dict[str, Any]) -> None:
    failed = 0
    for study, (seq_len, num_targets) in STUDY_SHAPES.items():
        study_file = str(PACKAGED_STUDIES / f"{study}.toml")
        params = packing.largest_params(load_study(study_file), seq_len)
        batch = params.batch_size
        rows = batch * (MEMORY_STEPS + 1)  # training steps + one validation batch
        entry: dict[str, Any] = {
            "batch_size": batch, "conv_filters": params.conv_filters,
            "conv_filter_sizes": params.conv_filter_sizes, "hidden_units": params.hidden_units,
            "seq_len": seq_len, "targets": num_targets,
            "estimate_bytes": training_bytes(params, seq_len, num_targets)
            + packing.data_bytes(rows, seq_len, num_targets),
        }
        figures[study] = entry
        if not ctx.cuda:
            continue
        try:
            entry["measured_bytes"] = measured_peak(params, seq_len, num_targets, ctx.device)
        except Exception as err:  # recorded; the other study still runs
            record_error(entry, err, f"the {study} study's peak")
            failed += 1
            continue
        entry["estimate_over_measured"] = entry["estimate_bytes"] / entry["measured_bytes"]
    if failed:
        raise RuntimeError(f"{failed} of {len(STUDY_SHAPES)} measurements failed")
    require_cuda(ctx)


def measured_peak(params: JobParams, seq_len: int, num_targets: int, device: torch.device) -> int:
    """Peak bytes allocated by one epoch of MEMORY_STEPS training steps and a validation batch
    under the trial's options (graphs + bf16), its data copied to the card inside."""
    batch = params.batch_size
    codes, targets = random_data(batch * (MEMORY_STEPS + 1), seq_len, num_targets)
    train_rows = batch * MEMORY_STEPS
    data = BassetData(train=Split(codes[:train_rows], targets[:train_rows]),
                      valid=Split(codes[train_rows:], targets[train_rows:]), test=None,
                      target_labels=[f"t{i}" for i in range(num_targets)])
    release_cuda_memory()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    train(params, data, options=TrainOptions(device=str(device), max_epochs=1, quiet=True))
    return torch.cuda.max_memory_allocated(device) - before


def hpo(ctx: Context, figures: dict[str, Any]) -> None:
    sizes = ctx.sizes
    gpus = str(ctx.device.index or 0) if ctx.cuda else "none"
    release_cuda_memory()  # --trials-per-gpu auto plans from the card's free memory
    with tempfile.TemporaryDirectory(prefix="gpu-check-hpo-") as tmp:
        folder = Path(tmp)
        data = ctx.demo_data or make_demo(folder / "demo.h5", n_seqs=sizes.hpo_seqs,
                                          seq_len=sizes.hpo_seq_len)
        shape = packing.data_shape(data)
        figures.update(budget_s=sizes.hpo_budget, gpus=gpus,
                       data=f"{data.name}: {shape.rows} train + valid x {shape.seq_len} bp")
        base, ours = compare(folder, data.resolve(), sizes.hpo_budget, gpus)
        if ctx.cuda:  # what `auto` chose for the service run (the same card, the same study)
            config = load_study(str(folder / "service.toml"))
            figures["trials_per_gpu_auto"] = packing.auto_trials_per_gpu(config, int(gpus))
    figures["runs"] = {
        label: {**dataclasses.asdict(o), "per_hour": o.per_hour}
        for label, o in (("one at a time, no pruning", base), ("service defaults", ours))
    }
    figures["ratio"] = ours.per_hour / base.per_hour if base.per_hour else None
    figures["best_difference"] = ours.best_auroc - base.best_auroc


def paper_scale_gpu(ctx: Context, figures: dict[str, Any]) -> None:
    """Issue 26 on the card: the evaluation metrics (70,000 validation rows x 164 and 733
    targets) on the GPU against scikit-learn's loop, and the dnase study on a file of Basset's
    shape (benchmarks/paper_scale.py) with --trials-per-gpu auto for paper_budget seconds."""
    require_cuda(ctx)
    figures["metrics"] = [compare_metrics(70_000, targets, str(ctx.device), 2)
                          for targets in (164, 733)]
    with tempfile.TemporaryDirectory(prefix="gpu-check-paper-") as tmp:
        data = Path(tmp) / "paper.h5"
        figures["write_s"] = paper_scale.write_synthetic(data, **paper_scale.PAPER)
        sample = paper_scale.run_study(
            data, ["--gpus", str(ctx.device.index or 0)], ctx.sizes.paper_budget,
            Path(tmp) / "run", per_epoch=False, mem_cap=64 * 2**30, min_available=8 * 2**30)
        copy = paper_scale.data_bytes(paper_scale.PAPER["rows"], paper_scale.PAPER["targets"], 1)
        figures["run"] = paper_scale.report("paper --gpus auto", sample, copy, 4 * copy)


STEPS: tuple[tuple[str, str, StepFn], ...] = (
    ("environment", "Environment", environment),
    ("gpu_tests", "GPU tests (python -m pytest -m gpu)", gpu_tests),
    ("throughput", "Train throughput, paper architecture", throughput),
    ("memory", "Peak memory against hpo.packing's estimate", memory),
    ("hpo", "HPO: one trial at a time against packing + pruning", hpo),
    ("paper_scale", "Paper scale: metrics on the GPU, the dnase study on 2.07M sequences",
     paper_scale_gpu),
)


# --- running and reporting ------------------------------------------------------------------


class _Collect(logging.Handler):
    """Keeps the warnings logged during a step (a failed CUDA graph capture, say) for the report."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


def _error(err: BaseException) -> str:
    first = str(err).strip().splitlines()
    return f"{type(err).__name__}: {first[0] if first else ''}"


def record_error(entry: dict[str, Any], err: BaseException, what: str) -> None:
    """A failed measurement inside a step: its error and traceback kept, the step goes on."""
    entry["error"], entry["traceback"] = _error(err), traceback.format_exc()
    log.error("%s failed: %s", what, entry["error"])


def run_step(ctx: Context, name: str, title: str, step: StepFn) -> Outcome:
    outcome = Outcome(name, title)
    collect = _Collect()
    logging.getLogger().addHandler(collect)
    start = time.perf_counter()
    try:
        step(ctx, outcome.figures)
        outcome.status = "passed"
    except Skipped as why:
        outcome.status, outcome.detail = "skipped", str(why)
    except (Exception, SystemExit) as err:  # SystemExit: a helper that exits on its own
        outcome.status, outcome.detail = "failed", _error(err)
        outcome.traceback = traceback.format_exc()
        log.exception("step %s failed", name)
    finally:
        logging.getLogger().removeHandler(collect)
        outcome.seconds = time.perf_counter() - start
        outcome.warnings = [m for m in collect.messages if not m.startswith(f"{log.name}:")]
    return outcome


@dataclass(frozen=True)
class Goal:
    text: str
    status: str  # PASS, FAIL, not evaluated
    detail: str


Figure = tuple[bool, str] | None  # (goal met, what was measured); None: no measurement


def _goal(text: str, not_here: str | None, figure: Figure) -> Goal:
    if not_here is not None:
        return Goal(text, "not evaluated", not_here)
    if figure is None:
        return Goal(text, "FAIL", "no measurement (see the step)")
    return Goal(text, "PASS" if figure[0] else "FAIL", figure[1])


def _speed(outcome: Outcome | None, batch: int, path: str) -> float | None:
    rows = outcome.figures.get("rows", []) if outcome else []
    return next((r.get("seq_per_s") for r in rows if r["batch"] == batch and r["path"] == path),
                None)


def _speedup(outcome: Outcome | None, batch: int) -> Figure:
    ours, port = _speed(outcome, batch, DEFAULT_PATH), _speed(outcome, batch, "port")
    if ours is None or port is None:
        return None
    return ours >= SPEED_GOAL * port, f"{ours / port:.2f}x ({ours:,.0f} vs {port:,.0f} seq/s)"


def _absolute(outcome: Outcome | None, batch: int) -> Figure:
    ours = _speed(outcome, batch, DEFAULT_PATH)
    return None if ours is None else (ours >= H100_SEQ_PER_S[batch], f"{ours:,.0f} seq/s")


def _memory_fit(outcome: Outcome | None, study: str) -> Figure:
    entry = outcome.figures.get(study, {}) if outcome else {}
    if "measured_bytes" not in entry:
        return None
    est, got = entry["estimate_bytes"], entry["measured_bytes"]
    return (abs(est - got) <= MEMORY_TOLERANCE * got,
            f"estimate {est / MIB:,.0f} MiB, measured {got / MIB:,.0f} MiB ({est / got:.2f}x)")


def _packing_gain(outcome: Outcome | None) -> Figure:
    ratio = outcome.figures.get("ratio") if outcome else None
    diff = outcome.figures.get("best_difference", math.nan) if outcome else math.nan
    if ratio is None or math.isnan(diff):
        return None
    return ratio >= HPO_GOAL and diff >= 0, f"{ratio:.2f}x trials/h, best value {diff:+.4f}"


def goals(ctx: Context, outcomes: dict[str, Outcome]) -> list[Goal]:
    """The issue's goals, judged from the steps that ran (on CUDA at full size only)."""

    def not_here(step: str, needs_full: bool = True) -> str | None:
        if not ctx.cuda:
            return "needs CUDA"
        if needs_full and ctx.sizes != FULL:
            return "needs the full sizes (not --quick)"
        return None if step in outcomes else "step not run"

    speed = outcomes.get("throughput")
    card = speed.figures.get("card", "") if speed else ""
    h100 = "H100" in card or "H200" in card
    found = [
        _goal(f"graphs + bf16 >= {SPEED_GOAL:g}x the port at batch {batch}",
              not_here("throughput"), _speedup(speed, batch))
        for batch in SPEED_BATCHES
    ]
    found += [
        _goal(f"graphs + bf16 >= {floor:,} seq/s at batch {batch} on an H100 or H200",
              not_here("throughput") or (None if h100 else f"not an H100/H200 ({card})"),
              _absolute(speed, batch))
        for batch, floor in H100_SEQ_PER_S.items()
    ]
    found += [
        _goal(f"memory estimate of the {study} study's largest trial within "
              f"{MEMORY_TOLERANCE:.0%} of the measured peak", not_here("memory", False),
              _memory_fit(outcomes.get("memory"), study))
        for study in STUDY_SHAPES
    ]
    found.append(_goal(f"packing + pruning >= {HPO_GOAL:g}x trials per GPU-hour at an equal or "
                       "better best value", not_here("hpo"), _packing_gain(outcomes.get("hpo"))))
    return found


def _clean(value: Any) -> Any:
    """JSON without NaN/Infinity (null instead)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _num(value: Any, spec: str = ",.0f") -> str:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "-" if missing else format(value, spec)


def markdown(header: dict[str, Any], outcomes: list[Outcome], found: list[Goal]) -> str:
    failed = [o.name for o in outcomes if o.status == "failed"]
    ending = f"exit code 1 (failed: {', '.join(failed)})" if failed else "exit code 0"
    lines = [
        "# GPU check", "",
        f"{header['started']} · `{header['command']}` · {header['seconds']:.0f} s · {ending}",
        "", "## Goals", "",
        *[f"- **{g.status}** {g.text}: {g.detail}" for g in found],
        "", "## Steps", "", "| step | outcome | seconds |", "|---|---|---:|",
        *[f"| {o.title} | {o.status}{': ' + o.detail if o.detail else ''} | {o.seconds:.1f} |"
          for o in outcomes],
    ]
    for o in outcomes:
        lines += ["", f"### {o.title}", ""]
        render = RENDERERS.get(o.name)
        if render is not None and o.figures:
            lines += render(o.figures)
        if o.warnings:
            lines += ["", "Warnings logged:", "", *[f"- {w}" for w in o.warnings]]
        if o.traceback:
            lines += ["", "```", o.traceback.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _environment_md(f: dict[str, Any]) -> list[str]:
    return ["| key | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in f.items()]]


def _gpu_tests_md(f: dict[str, Any]) -> list[str]:
    lines = [f"`{f['command']}`: {f.get('summary', '-')} (full output: {f['log']})"]
    return lines + [f"- {line}" for line in f.get("failures", [])]


def _throughput_md(f: dict[str, Any]) -> list[str]:
    peak = f"{f['peak_tflops']:g} TFLOP/s" if f.get("peak_tflops") else "unknown"
    lines = [(f"Card {f['card']} (dense bf16 peak {peak}), {f['flops_per_seq'] / 1e9:.3f} GFLOP "
              f"per sequence per training step (FlopCounterMode); best of {f['repeats']} passes "
              f"of {f['batches']} batches."), "",
             *([f["note"], ""] if "note" in f else []),
             "| batch | path | seq/s | x port | % of bf16 peak |", "|---:|---|---:|---:|---:|"]
    for r in f.get("rows", []):
        if "seq_per_s" in r:
            share = _num(None if r["peak_share"] is None else 100 * r["peak_share"], ".1f")
            lines.append(f"| {r['batch']} | {r['path']} | {_num(r['seq_per_s'])} | "
                         f"{_num(r['x_port'], '.2f')} | {share} |")
        else:
            why = r.get("error") or f"skipped: {r['skipped']}"
            lines.append(f"| {r['batch']} | {r['path']} | {why} | | |")
    return lines


def _memory_md(f: dict[str, Any]) -> list[str]:
    lines = ["| study | largest trial | estimate MiB | measured MiB | estimate / measured |",
             "|---|---|---:|---:|---:|"]
    for study, e in f.items():
        trial = (f"conv {e['conv_filters']} x {e['conv_filter_sizes']}, "
                 f"hidden {e['hidden_units']}, batch {e['batch_size']}, {e['seq_len']} bp, "
                 f"{e['targets']} targets")
        got = e["measured_bytes"] / MIB if "measured_bytes" in e else None
        measured = e.get("error") or _num(got)
        lines.append(f"| {study} | {trial} | {e['estimate_bytes'] / MIB:,.0f} | {measured} | "
                     f"{_num(e.get('estimate_over_measured'), '.2f')} |")
    return lines


def _hpo_md(f: dict[str, Any]) -> list[str]:
    lines = [f"{f['data']}, budget {f['budget_s']:g} s per run (--timeout), --gpus {f['gpus']}"
             + (f", --trials-per-gpu auto chose {f['trials_per_gpu_auto']}"
                if "trials_per_gpu_auto" in f else ""), ""]
    if "runs" not in f:
        return lines
    lines += ["| run | wall s | complete | pruned | failed | trials/h | best value |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for label, r in f["runs"].items():
        lines.append(f"| {label} | {r['seconds']:.0f} | {r['complete']} | {r['pruned']} | "
                     f"{r['failed']} | {r['per_hour']:.0f} | {_num(r['best_auroc'], '.4f')} |")
    ratio = "-" if f["ratio"] is None else f"{f['ratio']:.2f}x"
    difference = _num(f["best_difference"], "+.4f")
    lines += ["", f"Trials/h ratio {ratio}, best value difference {difference}"]
    return lines


def _paper_scale_md(f: dict[str, Any]) -> list[str]:
    lines = ["| rows | targets | sklearn loop s | on the GPU s | ratio | max abs diff |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in f.get("metrics", []):
        lines.append(f"| {r['rows']:,} | {r['targets']} | {r['sklearn_s']:.2f} | "
                     f"{r['vectorised_s']:.4f} | {r['ratio']:.0f}x | {r['max_abs_diff']:.1e} |")
    if "run" in f:
        lines += ["", f"File written in {f['write_s']:.0f} s; the study run:", "", "```",
                  json.dumps(f["run"], default=float), "```"]
    return lines


RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "environment": _environment_md, "gpu_tests": _gpu_tests_md, "throughput": _throughput_md,
    "memory": _memory_md, "hpo": _hpo_md, "paper_scale": _paper_scale_md,
}


def write_report(out: Path, header: dict[str, Any], outcomes: list[Outcome],
                 found: list[Goal]) -> None:
    record = {**header, "steps": [dataclasses.asdict(o) for o in outcomes],
              "goals": [dataclasses.asdict(g) for g in found],
              "all_passed": all(o.status != "failed" for o in outcomes)}
    write_text_atomic(out / "gpu_check.json", json.dumps(_clean(record), indent=2) + "\n")
    write_text_atomic(out / "gpu_check.md", markdown(header, outcomes, found))


def run_all(ctx: Context, steps: Sequence[tuple[str, str, StepFn]], command: str) -> int:
    """Run `steps` in order, rewriting the report after each; 0 when none failed, else 1."""
    started, clock = dt.datetime.now(dt.UTC), time.perf_counter()
    outcomes: list[Outcome] = []
    for i, (name, title, step) in enumerate(steps, 1):
        print(f"[{i}/{len(steps)}] {title} ...", flush=True)
        outcome = run_step(ctx, name, title, step)
        outcomes.append(outcome)
        print(f"      {outcome.status}{': ' + outcome.detail if outcome.detail else ''} "
              f"({outcome.seconds:.1f} s)", flush=True)
        header = {"command": command, "started": started.strftime("%Y-%m-%d %H:%M UTC"),
                  "seconds": time.perf_counter() - clock, "device": str(ctx.device),
                  "quick": ctx.sizes == QUICK}
        write_report(ctx.out, header, outcomes, goals(ctx, {o.name: o for o in outcomes}))
    for g in goals(ctx, {o.name: o for o in outcomes}):
        print(f"{g.status}: {g.text}: {g.detail}")
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgParser(prog="gpu_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the report (made if missing)")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (the CI check of the script)")
    parser.add_argument("--demo-data", type=Path,
                        help="demo HDF5 for the HPO step (basset-demo-data OUT), for a machine "
                        "without pyjaspar; default: made here")
    names = [name for name, _, _ in STEPS]
    parser.add_argument("--steps", nargs="+", choices=names, default=names,
                        help="run only these steps (default: all, in this order)")
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"argument --device: unknown device {args.device!r} (use cuda, cuda:N or cpu)")
    if device.type not in ("cuda", "cpu"):
        parser.error(f"argument --device: use cuda, cuda:N or cpu, not {args.device!r}")
    if args.demo_data is not None and not args.demo_data.is_file():
        parser.error(f"argument --demo-data: no such file: {args.demo_data}")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"argument --out: {args.out} exists and is not a folder")
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    ctx = Context(device, QUICK if args.quick else FULL, args.out, args.demo_data)
    steps = [s for s in STEPS if s[0] in args.steps]
    given = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", "benchmarks/gpu_check.py", *given])
    return run_all(ctx, steps, command)


if __name__ == "__main__":
    sys.exit(main())

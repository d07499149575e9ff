"""basset-hpo: run and inspect hyperparameter studies of the Basset trainer."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna

from basset import (
    SPLITS,
    ArgParser,
    cli_entry,
    positive_int,
    setup_logging,
)
from hpo import confirm, dataid, evaluate, interval, packing, progress, slurm
from hpo.cli_results import (
    dashboard_main,
    evaluate_main,
    export_main,
    open_at,
    print_result,
    report_main,
    status_main,
)
from hpo.config import StudyConfig, check_seed, load_study
from hpo.devices import default_threads, gpu_ids, plan_devices
from hpo.errors import ConfigError
from hpo.listing import listing_json, listing_text
from hpo.packing import TrialsPerGpu
from hpo.storage import (
    ENV_STORAGE,
    parse_url,
    resolve_url,
)
from hpo.study import check_batch_size, ensure_data, seeded_config
from hpo.supervisor import RunInterrupted, WorkerFailed, WrapUp, run_study
from hpo.workers import RunPlan

RUN_HELP = """\
Run a study: worker processes train trials until the study holds --n-trials trials.
--n-trials is the study's TOTAL across all workers and hosts, not a per-run count:
re-running the same command continues the study (nothing is lost or repeated), and a larger
--n-trials adds exactly the difference. Several hosts may run the same command against one
PostgreSQL storage; their workers join the study.

A study is found as ./studies/NAME.toml, else among the packaged studies (demo,
demo-transfer, dnase), or given as a path to a .toml file. The database defaults to
sqlite:///studies/NAME.db in the current directory ($BASSET_HPO_STORAGE or --storage override
it).
"""

CONFIRM_HELP = """\
Retrain each of the --top best completed trials of a study with --seeds new training seeds
(the same params, another -rand) to see how much of its validation AUROC survives (the winner's
curse). The confirmations are the trials of the study NAME-confirm in the same storage, trained
like `run`'s (workers, devices, heartbeats, Ctrl-C); re-running continues, and a larger --top or
--seeds adds only the missing ones. Prints per configuration the mean +- sd over its seeds of the
validation and test AUROC beside the original trial's, and the bias (original - confirmed).
"""


SLURM_HELP = """\
Submit a SLURM job array of --tasks tasks, each running the same `basset-hpo run` (its own
sampler seed) against the study's storage: --n-trials is the total of all tasks together, and
submitting again continues the study. The storage must be one every node reaches (PostgreSQL;
SQLite or loopback only when the partition's nodes are this host) and carry no password (use
~/.pgpass or $PGPASSWORD: jobs inherit the environment). --dry-run prints the sbatch script;
a submitted one is kept beside the task logs, ./studies/NAME/slurm/JOB_TASK.log.
"""


def parse_trials_per_gpu(text: str) -> TrialsPerGpu:
    """argparse type for --trials-per-gpu: a positive integer or "auto"."""
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 or auto, got {value}")
    return value


def _add_study_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", required=True, help="study name or path to a study .toml")
    parser.add_argument(
        "--storage",
        help=f"SQLAlchemy URL (sqlite:///FILE, postgresql+psycopg://USER:PW@HOST/DB); "
        f"default ${ENV_STORAGE}, else the study file's, else sqlite:///studies/NAME.db",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress display, warnings only"
    )


def _add_worker_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gpus", help="all (default when CUDA is present), none, or a list like 0,2"
    )
    parser.add_argument(
        "--trials-per-gpu",
        type=parse_trials_per_gpu,
        default="auto",
        help="workers per GPU, or auto (default): as many as the card's memory "
        "fits for the study's largest trial, at most 4 (8 with an MPS daemon running)",
    )
    parser.add_argument("--workers", type=int,
                        help="CPU workers when there is no GPU (default: the study's cpu_workers, "
                        f"{StudyConfig.cpu_workers})")
    parser.add_argument("--data", type=Path, help="HDF5 data set (overrides the study file's)")


def build_parser() -> ArgParser:
    parser = ArgParser(prog="basset-hpo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgParser)
    for add in (_add_run, _add_confirm, _add_slurm, _add_space, _add_status, _add_evaluate,
                _add_export, _add_report, _add_dashboard):
        add(commands)
    return parser


def _described(commands: Any, name: str, help: str, description: str) -> ArgParser:
    """A subcommand whose description keeps its line breaks."""
    sub: ArgParser = commands.add_parser(
        name, help=help, description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return sub


def _add_run(commands: Any) -> None:
    run = _described(commands, "run", "run or continue a study", RUN_HELP)
    _add_study_flags(run)
    run.add_argument("--n-trials", type=int, help="study-wide total (default: the study file's)")
    _add_worker_flags(run)
    run.add_argument("--timeout", type=float, help="end the run after S seconds: no trial starts "
                     "later, running ones stop at their next evaluation (complete, best kept)")
    run.add_argument("--seed", type=int, help="base sampler seed (each worker samples with "
                     "its own seed derived from it and its rank); give each host its own")
    run.add_argument("--warm-start", metavar="STUDY",
                     help="a new study starts from STUDY (same storage): its best configurations "
                     "first, its trials given to the sampler where the spaces agree")
    run.set_defaults(func=run_main)


def _add_confirm(commands: Any) -> None:
    confirm_cmd = _described(
        commands, "confirm", "retrain the top trials with new seeds (study NAME-confirm)",
        CONFIRM_HELP,
    )
    _add_study_flags(confirm_cmd)
    confirm_cmd.add_argument("--top", type=int, required=True,
                             help="how many of the best completed trials to confirm")
    confirm_cmd.add_argument("--seeds", type=int, required=True,
                             help="new training seeds per configuration")
    _add_worker_flags(confirm_cmd)
    confirm_cmd.set_defaults(func=confirm_main)


def _add_slurm(commands: Any) -> None:
    slurm_cmd = _described(commands, "slurm", "submit a SLURM job array of basset-hpo run",
                           SLURM_HELP)
    _add_study_flags(slurm_cmd)
    slurm_cmd.add_argument("--n-trials", type=positive_int, required=True,
                           help="study-wide total of all tasks")
    slurm_cmd.add_argument("--tasks", type=positive_int, required=True, help="array tasks")
    slurm_cmd.add_argument("--gpus-per-task", type=int, default=1,
                           help="GPUs of each task (--gres=gpu:G; 0: CPU workers), default 1")
    slurm_cmd.add_argument("--time", help="time limit of each task, HH:MM:SS or D-HH:MM:SS")
    slurm_cmd.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    slurm_cmd.add_argument("--account", help="SLURM account to charge")
    slurm_cmd.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                           help="one more #SBATCH option, e.g. --sbatch-arg=--mem=32G "
                           "(repeatable)")
    slurm_cmd.add_argument("--dry-run", action="store_true",
                           help="print the script, submit nothing")
    slurm_cmd.set_defaults(func=slurm_main)


def _add_space(commands: Any) -> None:
    space_cmd = commands.add_parser(
        "space", help="the study's search space: parameters, conditions, fixed keys, references"
    )
    space_cmd.add_argument("--study", required=True, help="study name or path to a study .toml")
    space_cmd.add_argument("--json", action="store_true",
                           help="as JSON (for Ray Tune, ConfigSpace/SMAC3 or another engine)")
    space_cmd.add_argument("-q", "--quiet", action="store_true", help=argparse.SUPPRESS)
    space_cmd.set_defaults(func=space_main)


def _add_status(commands: Any) -> None:
    status = commands.add_parser("status", help="counts, best trial, running trials")
    _add_study_flags(status)
    status.set_defaults(func=status_main)


def _add_evaluate(commands: Any) -> None:
    evaluate_cmd = commands.add_parser(
        "evaluate", help="test scores of the top trials' best checkpoints (and the references')"
    )
    _add_study_flags(evaluate_cmd)
    evaluate_cmd.add_argument("--top", type=positive_int, default=1,
                              help="score the K best completed trials (default %(default)s)")
    evaluate_cmd.add_argument("--split", choices=SPLITS, default="test",
                              help="the split to score (default %(default)s)")
    evaluate_cmd.add_argument("--data", type=Path,
                              help="HDF5 data set (default: the one the study ran on)")
    evaluate_cmd.set_defaults(func=evaluate_main)


def _add_export(commands: Any) -> None:
    export_cmd = commands.add_parser("export", help="a trial's params table (and model)")
    _add_study_flags(export_cmd)
    export_cmd.add_argument("-o", "--output", type=Path, required=True,
                            help="params file (Basset's -job table; JSON with --json)")
    export_cmd.add_argument("--trial", type=int, help="trial number (default: the best trial)")
    export_cmd.add_argument("--model", type=Path,
                            help="also copy the trial's best checkpoint here")
    export_cmd.add_argument("--confirmed", action="store_true",
                            help="the configuration with the best mean validation AUROC over its "
                            "confirmation seeds (basset-hpo confirm), with its best seed's model")
    export_cmd.add_argument("--json", action="store_true", help="params, value and trial as JSON")
    export_cmd.set_defaults(func=export_main)


def _add_report(commands: Any) -> None:
    report_cmd = commands.add_parser("report", help="self-contained HTML report of a study")
    _add_study_flags(report_cmd)
    report_cmd.add_argument("-o", "--output", type=Path, required=True, help="HTML file to write")
    report_cmd.set_defaults(func=report_main)


def _add_dashboard(commands: Any) -> None:
    dashboard_cmd = commands.add_parser("dashboard",
                                        help="optuna-dashboard on the study's storage")
    _add_study_flags(dashboard_cmd)
    dashboard_cmd.add_argument("--host", default="127.0.0.1",
                               help="address to listen on (default %(default)s: this machine only)")
    dashboard_cmd.add_argument("--port", type=int, default=8080, help="port (default %(default)s)")
    dashboard_cmd.set_defaults(func=dashboard_main)


def run_main(args: argparse.Namespace) -> int:
    config = load_study(args.study)
    if args.data is not None:
        config = replace(config, data=args.data)
    if args.seed is not None:
        check_seed(args.seed, "--seed")
        config = replace(config, seed=args.seed)
    config = replace(config, warm_start=args.warm_start)
    n_trials = config.n_trials if args.n_trials is None else args.n_trials
    if n_trials < 1:
        raise ConfigError(f"--n-trials must be >= 1, got {n_trials}")
    if args.timeout is not None and not args.timeout > 0:  # nan too
        raise ConfigError(f"--timeout must be > 0, got {args.timeout}")
    url = resolve_url(args.storage, config.name, config.storage)
    parse_url(url)
    config, devices = _plan_devices(config, args)
    plan = RunPlan(
        config=config, url=url, n_trials=n_trials, devices=devices,
        threads=default_threads(len(devices)),
        deadline=None if args.timeout is None else time.time() + args.timeout,
        quiet=args.quiet,
    )
    scores = evaluate.EndOfRunScores(config.data, config.name)
    snap = _launch(plan, scores)
    if isinstance(snap, int):
        return snap
    assert scores.storage is not None  # a run that ended without error has wrapped up
    print_result(snap, scores.storage)
    return 0


def _plan_devices(config: StudyConfig, args: argparse.Namespace
                  ) -> tuple[StudyConfig, list[str]]:
    """The run-planning sequence `run` and `confirm` share: the study's data made (the demo's)
    and checked, the seed model made, and one device per worker (--gpus, --trials-per-gpu,
    --workers)."""
    gpu_ids(args.gpus)  # a missing GPU before the demo data are made
    ensure_data(config)  # before planning: --trials-per-gpu auto reads the data's size
    config = seeded_config(config)
    check_batch_size(config)
    devices = plan_devices(args.gpus, args.trials_per_gpu, args.workers, config.cpu_workers,
                           config=config)
    packing.check_largest_fits(config, devices)
    return config, devices


def _launch(plan: RunPlan, wrap_up: WrapUp | None = None) -> progress.Snapshot | int:
    """Run the plan's workers: the study's final state, or the exit code of a failed or
    interrupted run (its message printed)."""
    try:
        return run_study(plan, wrap_up)
    except WorkerFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except RunInterrupted as stop:
        snap = stop.snapshot
        print(f"interrupted: {plan.config.name} holds {snap.counted}/{plan.n_trials} trials, "
              f"{snap.counts['WAITING']} waiting; the same command resumes the interrupted "
              "ones from their last evaluation", file=sys.stderr)
        return 130


def confirm_main(args: argparse.Namespace) -> int:
    confirm.check_counts(args.top, args.seeds)
    config = load_study(args.study)
    if args.data is not None:
        config = replace(config, data=args.data)
    url = resolve_url(args.storage, config.name, config.storage)
    _, _, storage = open_at(config.name, url)
    top = confirm.choose_top(storage.get_all_trials(storage.get_study_id_from_name(config.name)),
                             config.name, args.top)
    config, devices = _plan_devices(config, args)
    dataid.check_data(storage, config.name, config.data)  # the data the study ran on
    # the study's recorded interval: confirmations evaluate where its trials did
    config = interval.resolve(config, url, storage, devices, default_threads(len(devices)))
    linked, n_trials = confirm.prepare(config, url, top, args.seeds)
    plan = RunPlan(config=linked, url=url, n_trials=n_trials, devices=devices,
                   threads=default_threads(len(devices)), quiet=args.quiet)
    snap = _launch(plan)
    if isinstance(snap, int):
        return snap
    shown = confirm.results(config, url, top, device=devices[0])
    print(f"{progress.headline(snap)}\n{confirm.table(shown)}\n{confirm.verdict(shown)}")
    return 0


def space_main(args: argparse.Namespace) -> int:
    config = load_study(args.study)
    print(listing_json(config) if args.json else listing_text(config), end="")
    return 0


def slurm_main(args: argparse.Namespace) -> int:
    config = load_study(args.study)
    if args.gpus_per_task < 0:
        raise ConfigError(f"--gpus-per-task must be >= 0, got {args.gpus_per_task}")
    url = resolve_url(args.storage, config.name, config.storage)
    job = slurm.ArrayJob(  # refuses values that would add lines to the script
        study=args.study, name=config.name, url=url, n_trials=args.n_trials, tasks=args.tasks,
        seed=config.seed, workdir=Path.cwd(), basset_hpo=slurm.console_script(),
        gpus_per_task=args.gpus_per_task, eval_every=config.eval_every,
        eval_seconds=config.eval_seconds, time_limit=args.time,
        partition=args.partition,
        account=args.account, sbatch_args=args.sbatch_arg,
    )
    if args.time is not None:
        slurm.time_limit_seconds(args.time)
    slurm.check_storage(url, args.tasks, slurm.partition_nodes(args.partition))
    if args.dry_run:
        print(slurm.script(job), end="")
        return 0
    slurm.check_connection(url)
    job_id = slurm.submit(job)
    print(f"submitted job {job_id}: {args.tasks} task(s) of study {config.name}, "
          f"{args.n_trials} trials in total; logs {job.log_dir}/{job_id}_TASK.log")
    return 0


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(quiet=args.quiet)
    # Optuna's INFO lines ("A new study created in RDB ...") are not the service's output
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return int(args.func(args))

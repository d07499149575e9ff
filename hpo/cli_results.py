"""basset-hpo's commands that read a study: status, evaluate, export, report, dashboard."""

from __future__ import annotations

import argparse
from pathlib import Path

from optuna.storages import RDBStorage
from rich.console import Console
from rich.table import Table

from basset import check_output_file, load_split
from hpo import dataid, evaluate, export, progress, slurm
from hpo.config import HeartbeatConfig, check_name, find_study_file, load_study
from hpo.confirm import confirm_name
from hpo.errors import ConfigError, StorageError
from hpo.overwrite import refuse_overwrite, study_inputs
from hpo.storage import make_storage, mask, parse_url, resolve_url, sqlite_path


def _target(args: argparse.Namespace) -> tuple[str, str]:
    """(study name, storage URL) for commands that read a study."""
    try:
        find_study_file(args.study)
    except ConfigError:
        if args.study.endswith(".toml"):
            raise
        check_name(args.study)  # a name without a study file
        return args.study, resolve_url(args.storage, args.study)
    config = load_study(args.study)
    return config.name, resolve_url(args.storage, config.name, config.storage)


def _study_file(args: argparse.Namespace) -> Path | None:
    try:
        return find_study_file(args.study)
    except ConfigError:
        return None


def _check_outputs(args: argparse.Namespace, name: str, url: str, storage: RDBStorage,
                   outputs: list[tuple[str, Path | None]]) -> None:
    """Before any work: no output may be the study's database (or a file beside it), its study
    file, its data, a checkpoint of its trials (or its confirmations'), or another output."""
    inputs = study_inputs(storage, url, (name, confirm_name(name)), _study_file(args))
    refuse_overwrite(outputs, inputs)


def open_study(args: argparse.Namespace) -> tuple[str, str, RDBStorage]:
    """(name, URL, storage) of an existing study, for commands that only read it."""
    return open_at(*_target(args))


def open_at(name: str, url: str) -> tuple[str, str, RDBStorage]:
    parse_url(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StorageError(f"no study database at {path} (run basset-hpo run --study {name} first)")
    storage = make_storage(url, HeartbeatConfig(interval=0), create=False)  # a reader
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        raise StorageError(f"no study {name!r} in {mask(url)}") from None
    return name, url, storage


def status_main(args: argparse.Namespace) -> int:
    name, _, storage = open_study(args)
    snap = progress.snapshot(storage, name)
    print_result(snap, storage)
    if snap.running:
        print("running:")
        Console(soft_wrap=True).print(progress.running_table(snap))
    jobs = slurm.queued_jobs(name)
    if jobs:
        print("slurm jobs:")
        Console(soft_wrap=True).print(_jobs_table(jobs))
    return 0


def _jobs_table(jobs: list[tuple[str, str, str, str]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("job", "state", "time", "nodes (reason)"):
        table.add_column(column)
    for row in jobs:
        table.add_row(*row)
    return table


def evaluate_main(args: argparse.Namespace) -> int:
    name, _, storage = open_study(args)
    study_id = storage.get_study_id_from_name(name)
    trials = storage.get_all_trials(study_id, deepcopy=False)
    evaluate.top_trials(trials, args.top)  # bad --top or no completed trial: before any reading
    data_path = args.data or storage.get_study_user_attrs(study_id).get("data_path")
    if data_path is None:
        raise ConfigError(f"study {name!r} stored no data path: give --data")
    data = load_split(data_path, args.split)
    if args.data is not None:  # another copy of the study's data, not other data
        dataid.check_data(storage, name, args.data)
    scored = evaluate.evaluate_study(storage, name, data, top=args.top, split=args.split)
    print(f"trial\treference\tvalid_auroc\t{args.split}_auroc\t{args.split}_auprc")
    for trial, scores in scored:
        print(f"{trial.number}\t{trial.user_attrs.get('reference', '-')}"
              f"\t{evaluate.valid_value(trial):.4f}\t{scores.auroc:.4f}\t{scores.auprc:.4f}")
    return 0


def export_main(args: argparse.Namespace) -> int:
    name, url, storage = open_study(args)
    if args.confirmed and args.trial is not None:
        raise ConfigError("--confirmed picks the trial itself: give it or --trial, not both")
    _check_outputs(args, name, url, storage, [("-o", args.output), ("--model", args.model)])
    for path in (args.output, args.model):
        if path is not None:
            check_output_file(path)  # before the trial is looked up: outputs first
    chosen = export.prepare(storage, name, number=args.trial, with_model=args.model is not None,
                            confirmed=args.confirmed)
    export.write(chosen, args.output, json_format=args.json, model=args.model)
    model = f" and its model to {args.model}" if args.model else ""
    value = f"value {chosen.trial.value:.4f}"
    if chosen.confirmed is not None:
        s = chosen.confirmed
        value += f", confirmed {s.valid_mean:.4f} over {len(s.valid)} seed(s)"
        model = f" and its best seed's model to {args.model}" if args.model else ""
    rc = "; it trained with basset-train -rc" if chosen.trial.user_attrs.get("rc") else ""
    print(f"trial {chosen.trial.number} ({value}): params to {args.output}{model}{rc}")
    return 0


def report_main(args: argparse.Namespace) -> int:
    name, url, storage = open_study(args)
    _check_outputs(args, name, url, storage, [("-o", args.output)])
    from hpo import report  # plotly: only for this command

    report.write_report(storage, url, name, args.output)
    print(f"report of {name} written to {args.output}")
    return 0


def dashboard_main(args: argparse.Namespace) -> int:
    name, url, storage = open_study(args)
    from hpo import dashboard  # optuna_dashboard: only for this command

    server = dashboard.bind(args.host, args.port, storage)
    print(f"optuna-dashboard for {name} ({mask(url)}): {dashboard.study_url(server, storage, name)}"
          "\n(Ctrl-C stops it)", flush=True)
    dashboard.serve(server)
    return 0


def print_result(snap: progress.Snapshot, storage: RDBStorage) -> None:
    """Plain stdout (no wrapping, tabs kept): the params table can be saved as a -job file."""
    print(progress.headline(snap))
    scores = evaluate.load_scores(storage, snap.study_name)
    for line in evaluate.score_lines(snap.best, snap.references, scores):
        print(line)
    if snap.best is not None:
        flag = " (basset-train -rc)" if snap.best.user_attrs.get("rc") else ""
        print(f"best trial {snap.best.number} (value {snap.best.value:.4f}), params table{flag}:")
        print(snap.best.user_attrs.get("params_table", snap.best.params), end="")

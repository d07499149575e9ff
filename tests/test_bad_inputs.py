"""The bad-input catalogue: every console script, fed something wrong, answers with exactly one
line on stderr and exit code 2 (no traceback), and a study database it touched is unchanged
byte for byte.

Each case runs the script's main in this process (importing torch once); the cases marked
SUB also run through the installed console script in a subprocess, as a user would.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from basset import cli as basset_cli
from basset.api import TrainOptions
from basset.features import main as features_main
from basset.interpret.motifs import main as motifs_main
from basset.interpret.sat import main as sat_main
from basset.params import JobParams
from basset.preprocess import main as preprocess_main
from basset.trainer import train
from hpo.cli import main as hpo_main
from hpo.config import load_study
from hpo.study import prepare_study
from hpo.workers import RunPlan, run_trials
from hpo_testutil import quick_train, study_toml, tiny_data, write_h5

SCRIPTS: dict[str, Callable[[list[str]], int]] = {
    "basset-preprocess": preprocess_main, "basset-train": basset_cli.train_main,
    "basset-test": basset_cli.test_main, "basset-predict": basset_cli.predict_main, "basset-hpo": hpo_main, "basset-motifs": motifs_main,
    "basset-sat": sat_main, "basset-features": features_main,
}
PG_PASSWORD = "hunter2-secret"
HAS_CUDA = torch.cuda.is_available()


@dataclass(frozen=True)
class Case:
    script: str
    args: list[str]  # {ws} is the workspace folder
    says: str  # a piece of the one stderr line
    db: str | None = None  # a study database that must stay byte-for-byte unchanged
    sub: bool = False  # also through the console script in a subprocess


CASES: dict[str, Case] = {
    # --- basset-preprocess: FASTA + activity table -> HDF5
    "preprocess-missing-fasta": Case("basset-preprocess", ["{ws}/nope.fa", "{ws}/acts.txt", "{ws}/o.h5"], "not found"),
    "preprocess-id-mismatch": Case("basset-preprocess", ["{ws}/other_ids.fa", "{ws}/acts.txt", "{ws}/o.h5"], "not in the activity table", sub=True),
    "preprocess-non-numeric-table": Case("basset-preprocess", ["{ws}/seqs.fa", "{ws}/bad_acts.txt", "{ws}/o.h5"], "bad_acts.txt"),
    "preprocess-repair-not-scrambled": Case("basset-preprocess", ["--repair-scrambled", "{ws}/tiny.h5", "{ws}/fixed.h5"], "not scrambled"),
    # --- basset-features: sample table + peaks + genome
    "features-missing-bed": Case("basset-features", ["{ws}/samples.txt", "{ws}/seqs.fa", "-o", "{ws}/er"], "nowhere.bed", sub=True),
    "features-bed-of-two-columns": Case("basset-features", ["{ws}/samples2.txt", "{ws}/seqs.fa", "-o", "{ws}/er"], "fewer than three columns"),
    # --- basset-train: data, params, devices
    "train-missing-data": Case("basset-train", ["{ws}/missing.h5"], "missing.h5"),
    "train-not-hdf5": Case("basset-train", ["{ws}/acts.txt"], "acts.txt", sub=True),
    "train-missing-dataset": Case("basset-train", ["{ws}/no_valid_out.h5"], "valid_out"),
    "train-wrong-shape": Case("basset-train", ["{ws}/wrong_shape.h5"], "wrong_shape.h5"),
    "train-scrambled-onehot": Case("basset-train", ["{ws}/scrambled.h5"], "one-hot"),
    "train-nan-targets": Case("basset-train", ["{ws}/nan_targets.h5"], "nan_targets.h5"),
    "train-unknown-params-key": Case("basset-train", ["-job", "{ws}/unknown_key.txt", "{ws}/tiny.h5"], "conv_filterz"),
    "train-malformed-params-value": Case("basset-train", ["-job", "{ws}/bad_value.txt", "{ws}/tiny.h5"], "learning_rate"),
    "train-invalid-architecture": Case("basset-train", ["-job", "{ws}/too_deep.txt", "--padding", "paper", "{ws}/tiny.h5"], "layer"),
    "train-restart-not-a-checkpoint": Case("basset-train", ["-job", "{ws}/small.txt", "-restart", "{ws}/acts.txt", "{ws}/tiny.h5"], "acts.txt"),
    "train-gpu-index-missing": Case("basset-train", ["--device", "cuda:7", "{ws}/tiny.h5"], "cuda"),
    # --- basset-test / basset-predict: models
    "test-missing-model": Case("basset-test", ["{ws}/nope_best.pt", "{ws}/tiny.h5", "{ws}/out"], "nope_best.pt"),
    "test-pickle-that-runs-code": Case("basset-test", ["{ws}/evil.pt", "{ws}/tiny.h5", "{ws}/out"], "evil.pt"),
    "predict-data-neither-fasta-nor-hdf5": Case("basset-predict", ["{ws}/m_best.pt", "{ws}/empty.txt", "{ws}/p.tsv"], "empty.txt"),
    "predict-negative-batch-size": Case("basset-predict", ["--batch-size", "-5", "{ws}/m_best.pt", "{ws}/seqs.fa", "{ws}/p.tsv"], "batch"),
    # --- basset-hpo run: study files, storage, flags
    "hpo-toml-syntax-error": Case("basset-hpo", ["run", "--study", "{ws}/syntax.toml"], "not valid TOML"),
    "hpo-unknown-sampler": Case("basset-hpo", ["run", "--study", "{ws}/sampler.toml"], "sampler.type"),
    "hpo-unknown-pruner": Case("basset-hpo", ["run", "--study", "{ws}/pruner.toml"], "pruner.type"),
    "hpo-unknown-space-key": Case("basset-hpo", ["run", "--study", "{ws}/space.toml"], "space"),
    "hpo-malformed-storage-url": Case("basset-hpo", ["run", "--study", "{ws}/cat.toml", "--storage", "not a url"], "storage URL"),
    "hpo-unknown-dialect": Case("basset-hpo", ["run", "--study", "{ws}/cat.toml", "--storage", f"mysql://u:{PG_PASSWORD}@h/db"], "postgresql"),
    "hpo-unreachable-postgres": Case("basset-hpo", ["run", "--study", "{ws}/cat.toml", "--storage", f"postgresql+psycopg://basset:{PG_PASSWORD}@127.0.0.1:1/db"], "cannot reach PostgreSQL at 127.0.0.1:1 (connection refused)", sub=True),
    "hpo-negative-n-trials": Case("basset-hpo", ["run", "--study", "{ws}/cat.toml", "--n-trials", "-3"], "--n-trials", db="cat"),
    "hpo-gpu-index-missing": Case("basset-hpo", ["run", "--study", "{ws}/cat.toml", "--gpus", "7"], "--gpus 7", db="cat"),
    "hpo-unknown-study": Case("basset-hpo", ["run", "--study", "nosuchstudy"], "nosuchstudy"),
    # --- basset-hpo status / export / report / dashboard on existing databases
    "status-no-database": Case("basset-hpo", ["status", "--study", "{ws}/cat.toml", "--storage", "sqlite:///{ws}/none.db"], "no study database"),
    "status-study-not-in-database": Case("basset-hpo", ["status", "--study", "other", "--storage", "sqlite:///{ws}/studies/cat.db"], "no study 'other'", db="cat"),
    "status-foreign-sqlite-database": Case("basset-hpo", ["status", "--study", "x", "--storage", "sqlite:///{ws}/studies/foreign.db"], "not a study database", db="foreign"),
    "report-storage-not-a-database": Case("basset-hpo", ["report", "--study", "x", "--storage", "sqlite:///{ws}/acts.txt", "-o", "{ws}/r.html"], "file is not a database"),
    "export-empty-study": Case("basset-hpo", ["export", "--study", "{ws}/empty.toml", "-o", "{ws}/best.txt"], "no completed trial", db="empty", sub=True),
    "export-trial-that-does-not-exist": Case("basset-hpo", ["export", "--study", "{ws}/cat.toml", "--trial", "99", "-o", "{ws}/best.txt"], "no trial 99", db="cat"),
    "export-into-missing-folder": Case("basset-hpo", ["export", "--study", "{ws}/cat.toml", "-o", "{ws}/no/such/dir/best.txt"], "does not exist", db="cat"),
    "export-confirmed-without-confirmation": Case("basset-hpo", ["export", "--study", "{ws}/cat.toml", "--confirmed", "-o", "{ws}/best.txt"], "no completed confirmation", db="cat"),
    # --- basset-hpo confirm: counts the study cannot give, checked before the confirm study exists
    "confirm-top-zero": Case("basset-hpo", ["confirm", "--study", "{ws}/cat.toml", "--top", "0", "--seeds", "2"], "--top must be > 0, got 0", db="cat"),
    "confirm-negative-seeds": Case("basset-hpo", ["confirm", "--study", "{ws}/cat.toml", "--top", "1", "--seeds", "-1"], "--seeds must be > 0, got -1", db="cat"),
    "confirm-top-beyond-completed": Case("basset-hpo", ["confirm", "--study", "{ws}/cat.toml", "--top", "99", "--seeds", "2"], "--top 99: study 'cat' has only 3 completed trial(s)", db="cat", sub=True),
    "confirm-no-completed-trial": Case("basset-hpo", ["confirm", "--study", "{ws}/empty.toml", "--top", "1", "--seeds", "2"], "no completed trial", db="empty"),
    "report-into-missing-folder": Case("basset-hpo", ["report", "--study", "{ws}/cat.toml", "-o", "{ws}/no/such/dir/r.html"], "does not exist", db="cat"),
    "evaluate-study-not-in-database": Case("basset-hpo", ["evaluate", "--study", "other", "--storage", "sqlite:///{ws}/studies/cat.db"], "no study 'other'", db="cat"),
    "evaluate-no-completed-trial": Case("basset-hpo", ["evaluate", "--study", "{ws}/empty.toml"], "no completed trial", db="empty", sub=True),
    "evaluate-top-zero": Case("basset-hpo", ["evaluate", "--study", "{ws}/cat.toml", "--top", "0"], "--top", db="cat"),
    "evaluate-trial-without-checkpoint": Case("basset-hpo", ["evaluate", "--study", "{ws}/cat.toml"], "saved no best checkpoint", db="cat"),
    "dashboard-port-in-use": Case("basset-hpo", ["dashboard", "--study", "{ws}/cat.toml", "--port", "{port}"], "in use", db="cat", sub=True),
    # --- interpretation
    "motifs-model-not-a-checkpoint": Case("basset-motifs", ["{ws}/acts.txt", "{ws}/tiny.h5", "{ws}/motifs"], "acts.txt"),
    "motifs-no-sequences-in-split": Case("basset-motifs", ["{ws}/m_best.pt", "{ws}/no_test.h5", "{ws}/motifs"], "test"),
    "sat-unknown-target": Case("basset-sat", ["--targets", "nosuchlabel", "{ws}/m_best.pt", "{ws}/seqs.fa", "{ws}/sat"], "nosuchlabel"),
    "sat-missing-fasta": Case("basset-sat", ["{ws}/m_best.pt", "{ws}/nope.fa", "{ws}/sat"], "nope.fa"),
}
if not HAS_CUDA:
    CASES["train-cuda-without-cuda"] = Case("basset-train", ["-cuda", "{ws}/tiny.h5"], "CUDA")


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every bad (and the few good) inputs the cases need, made once."""
    ws = tmp_path_factory.mktemp("bad_inputs")
    data = tiny_data()
    write_h5(ws / "tiny.h5", data)
    _h5_variants(ws)
    params = JobParams(conv_filters=[4], conv_filter_sizes=[5], pool_width=[2], hidden_units=[8],
                       hidden_dropouts=[0.1], batch_size=32)
    train(params, data, options=TrainOptions(max_epochs=1, save_prefix=ws / "m", quiet=True))
    (ws / "seqs.fa").write_text("".join(f">s{i}\nACGTACGTAC\n" for i in range(6)))
    (ws / "other_ids.fa").write_text("".join(f">x{i}\nACGTACGTAC\n" for i in range(6)))
    (ws / "acts.txt").write_text("a\tb\n" + "".join(f"s{i}\t{i % 2}\t1\n" for i in range(6)))
    (ws / "bad_acts.txt").write_text("a\tb\n" + "".join(f"s{i}\tyes\t1\n" for i in range(6)))
    (ws / "empty.txt").write_text("")
    (ws / "samples.txt").write_text("a nowhere.bed\n")
    (ws / "two.bed").write_text("s0\t5\n")
    (ws / "samples2.txt").write_text("a two.bed\n")
    (ws / "small.txt").write_text("batch_size 32\n")
    (ws / "unknown_key.txt").write_text("conv_filterz 10\nbatch_size 32\n")
    (ws / "bad_value.txt").write_text("learning_rate fast\nbatch_size 32\n")
    (ws / "too_deep.txt").write_text(  # 60 bp cannot survive four width-4 pools
        "batch_size 32\n" + "conv_filters 4\nconv_filter_sizes 9\npool_width 4\n" * 4)
    torch.save(_Evil(), ws / "evil.pt")  # weights_only=True refuses to unpickle it
    _studies(ws)
    return ws


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (shutil.rmtree, ("/definitely/not/here",))


def _h5_variants(ws: Path) -> None:
    def variant(name: str, change: Callable[[h5py.File], None]) -> None:
        shutil.copy(ws / "tiny.h5", ws / name)
        with h5py.File(ws / name, "r+") as h5:
            change(h5)

    variant("no_valid_out.h5", lambda h5: h5.__delitem__("valid_out"))

    def wrong_shape(h5: h5py.File) -> None:
        targets = h5["train_out"][:]
        del h5["train_out"]
        h5["train_out"] = targets[:-7]  # fewer target rows than sequences

    def scrambled(h5: h5py.File) -> None:
        x = h5["train_in"][:]
        x[:, :, :, :10] = 1.0  # every channel hot
        h5["train_in"][...] = x

    def nan_targets(h5: h5py.File) -> None:
        y = h5["valid_out"][:]
        y[3, 1] = np.nan
        h5["valid_out"][...] = y

    variant("wrong_shape.h5", wrong_shape)
    variant("scrambled.h5", scrambled)
    variant("nan_targets.h5", nan_targets)
    variant("no_test.h5", lambda h5: (h5.__delitem__("test_in"), h5.__delitem__("test_out")))


def _studies(ws: Path) -> None:
    good = study_toml(ws, name="cat", data=ws / "tiny.h5")
    text = good.read_text()
    (ws / "syntax.toml").write_text(text.replace("max_epochs = 3", "max_epochs = = 3"))
    (ws / "sampler.toml").write_text(text.replace('type = "tpe"', 'type = "bayes"'))
    (ws / "pruner.toml").write_text(text.replace('type = "none"', 'type = "asha"'))
    (ws / "space.toml").write_text(text.replace("num_conv = [1, 2]", "num_convs = [1, 2]"))
    study_toml(ws, name="empty", data=ws / "tiny.h5")
    (ws / "studies").mkdir()
    with sqlite3.connect(ws / "studies" / "foreign.db") as conn:  # another program's database
        conn.execute("create table t (x integer)")
    for name, n_trials in (("cat", 3), ("empty", 0)):
        config = load_study(str(ws / f"{name}.toml"))
        url = f"sqlite:///{ws}/studies/{name}.db"
        prepare_study(config, url)
        if n_trials:
            run_trials(RunPlan(config=config, url=url, n_trials=n_trials, devices=["cpu"],
                               threads=1, train_fn=quick_train), 0)
        # Everything into the main file, so that only a real write can change its bytes (the
        # last connection to close would otherwise move pending WAL pages into it).
        with sqlite3.connect(ws / "studies" / f"{name}.db") as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _digest(db: Path) -> str:
    """The database and its write-ahead log (where a write lands first; a missing log and an
    empty one are the same)."""
    wal = db.with_name(db.name + "-wal")
    return hashlib.sha256(db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")).hexdigest()


def _argv(case: Case, ws: Path, port: int) -> list[str]:
    return [a.replace("{ws}", str(ws)).replace("{port}", str(port)) for a in case.args]


def _in_process(case: Case, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = SCRIPTS[case.script](argv)
    except SystemExit as stop:  # argparse
        code = stop.code  # type: ignore[assignment]
    return int(code), capsys.readouterr().err


def _subprocess(case: Case, argv: list[str], ws: Path) -> tuple[int, str]:
    script = Path(sys.executable).parent / case.script
    done = subprocess.run([str(script), *argv], cwd=ws, capture_output=True, text=True,
                          timeout=120)
    return done.returncode, done.stderr


RUNS = [pytest.param(name, "in-process", id=name) for name in CASES] + [
    pytest.param(name, "subprocess", id=f"{name}-subprocess")
    for name, case in CASES.items() if case.sub
]


@pytest.mark.parametrize("name, how", RUNS)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    name: str, how: str, ws: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CASES[name]
    monkeypatch.chdir(ws)
    monkeypatch.delenv("BASSET_HPO_STORAGE", raising=False)
    db = ws / "studies" / f"{case.db}.db" if case.db else None
    before = _digest(db) if db else None
    argv = _argv(case, ws, busy_port)
    code, err = _in_process(case, argv, capsys) if how == "in-process" else _subprocess(case, argv, ws)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"{name}: stderr was {err!r}"
    assert code == 2, f"{name}: exit {code}, stderr {err!r}"
    assert "Traceback" not in err
    assert case.says in err, f"{name}: {err!r} does not say {case.says!r}"
    assert PG_PASSWORD not in err
    if db is not None:
        assert _digest(db) == before, f"{name} changed {db}"


def test_the_catalogue_covers_every_command() -> None:
    assert len(CASES) >= 25
    assert {case.script for case in CASES.values()} == set(SCRIPTS)
    hpo_commands = {case.args[0] for case in CASES.values() if case.script == "basset-hpo"}
    assert hpo_commands == {"run", "confirm", "status", "evaluate", "export", "report",
                            "dashboard"}

"""The bad-input catalogue: every console script, fed something wrong, answers with exactly one
line on stderr and exit code 2 (no traceback), leaves no output or temp file behind, and a study
database it touched is unchanged byte for byte (with its write-ahead log).

Each case runs the script's main in this process (importing torch once); the cases marked
SUB also run through the installed console script in a subprocess, as a user would. Cases on a
read-only or a full file system use small tmpfs mounts and are skipped where mounting is not
allowed (not root, or no mount namespace).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from basset import BassetData, ResidentData, TrainHooks, TrainResult
from basset.params import JobParams
from basset.training.checkpoint import FORMAT, VERSION
from basset.training.seam import TrainOptions
from basset.training.trainer import train
from hpo.cli import main as hpo_main
from hpo.config import load_study
from hpo.objective import TrainFn
from hpo.storage import optuna_tables
from hpo.study import prepare_study
from hpo.workers import RunPlan, run_trials
from hpo_testutil import quick_train, study_toml, tiny_data, write_h5
from reliability_testutil import BASSET_SCRIPTS, fill_file_system
from synth_data import make_data

SCRIPTS: dict[str, Callable[[list[str]], int]] = {**BASSET_SCRIPTS, "basset-hpo": hpo_main}
PG_PASSWORD = "hunter2-secret"
# The Optuna table the damaged study lacks (a copy of a study, damaged on purpose).
DROPPED = max(optuna_tables() - {"studies", "version_info"})
HAS_CUDA = torch.cuda.is_available()


@dataclass(frozen=True)
class Case:
    script: str
    args: list[str]  # {ws} is the workspace folder
    says: str  # a piece of the one stderr line
    db: str | None = None  # a study database that must stay byte-for-byte unchanged
    sub: bool = False  # also through the console script in a subprocess
    mounts: bool = False  # needs the read-only and full tmpfs mounts ({ro}, {full})
    cwd: str = "{ws}"


CASES: dict[str, Case] = {
    # --- basset-preprocess: FASTA + activity table -> HDF5
    "preprocess-missing-fasta": Case(
        "basset-preprocess", ["{ws}/nope.fa", "{ws}/acts.txt", "{ws}/o.h5"], "not found"
    ),
    "preprocess-id-mismatch": Case(
        "basset-preprocess",
        ["{ws}/other_ids.fa", "{ws}/acts.txt", "{ws}/o.h5"],
        "not in the activity table",
        sub=True,
    ),
    "preprocess-non-numeric-table": Case(
        "basset-preprocess", ["{ws}/seqs.fa", "{ws}/bad_acts.txt", "{ws}/o.h5"], "bad_acts.txt"
    ),
    "preprocess-repair-not-scrambled": Case(
        "basset-preprocess",
        ["--repair-scrambled", "{ws}/tiny.h5", "{ws}/fixed.h5"],
        "not scrambled",
    ),
    # --- basset-features: sample table + peaks + genome
    "features-missing-bed": Case(
        "basset-features",
        ["{ws}/samples.txt", "{ws}/seqs.fa", "-o", "{ws}/er"],
        "nowhere.bed",
        sub=True,
    ),
    "features-bed-of-two-columns": Case(
        "basset-features",
        ["{ws}/samples2.txt", "{ws}/seqs.fa", "-o", "{ws}/er"],
        "fewer than three columns",
    ),
    # --- basset-train: data, params, devices
    "train-missing-data": Case("basset-train", ["{ws}/missing.h5"], "missing.h5"),
    "train-not-hdf5": Case("basset-train", ["{ws}/acts.txt"], "acts.txt", sub=True),
    "train-missing-dataset": Case("basset-train", ["{ws}/no_valid_out.h5"], "valid_out"),
    "train-wrong-shape": Case("basset-train", ["{ws}/wrong_shape.h5"], "wrong_shape.h5"),
    "train-scrambled-onehot": Case("basset-train", ["{ws}/scrambled.h5"], "one-hot"),
    "train-nan-targets": Case("basset-train", ["{ws}/nan_targets.h5"], "nan_targets.h5"),
    "train-unknown-params-key": Case(
        "basset-train", ["-job", "{ws}/unknown_key.txt", "{ws}/tiny.h5"], "conv_filterz"
    ),
    "train-malformed-params-value": Case(
        "basset-train", ["-job", "{ws}/bad_value.txt", "{ws}/tiny.h5"], "learning_rate"
    ),
    "train-invalid-architecture": Case(
        "basset-train", ["-job", "{ws}/too_deep.txt", "--padding", "paper", "{ws}/tiny.h5"], "layer"
    ),
    "train-restart-not-a-checkpoint": Case(
        "basset-train",
        ["-job", "{ws}/small.txt", "-restart", "{ws}/acts.txt", "{ws}/tiny.h5"],
        "acts.txt",
    ),
    "train-gpu-index-missing": Case("basset-train", ["--device", "cuda:7", "{ws}/tiny.h5"], "cuda"),
    # --- basset-test / basset-predict: models
    "test-missing-model": Case(
        "basset-test", ["{ws}/nope_best.pt", "{ws}/tiny.h5", "{ws}/out"], "nope_best.pt"
    ),
    "test-pickle-that-runs-code": Case(
        "basset-test", ["{ws}/evil.pt", "{ws}/tiny.h5", "{ws}/out"], "evil.pt"
    ),
    "predict-data-neither-fasta-nor-hdf5": Case(
        "basset-predict", ["{ws}/m_best.pt", "{ws}/empty.txt", "{ws}/p.tsv"], "empty.txt"
    ),
    "predict-negative-batch-size": Case(
        "basset-predict",
        ["--batch-size", "-5", "{ws}/m_best.pt", "{ws}/seqs.fa", "{ws}/p.tsv"],
        "batch",
    ),
    # --- basset-hpo run: study files, storage, flags
    "hpo-toml-syntax-error": Case(
        "basset-hpo", ["run", "--study", "{ws}/syntax.toml"], "not valid TOML"
    ),
    "hpo-unknown-sampler": Case(
        "basset-hpo", ["run", "--study", "{ws}/sampler.toml"], "sampler.type"
    ),
    "hpo-unknown-pruner": Case("basset-hpo", ["run", "--study", "{ws}/pruner.toml"], "pruner.type"),
    "hpo-unknown-space-key": Case("basset-hpo", ["run", "--study", "{ws}/space.toml"], "space"),
    "hpo-malformed-storage-url": Case(
        "basset-hpo", ["run", "--study", "{ws}/cat.toml", "--storage", "not a url"], "storage URL"
    ),
    "hpo-unknown-dialect": Case(
        "basset-hpo",
        ["run", "--study", "{ws}/cat.toml", "--storage", f"mysql://u:{PG_PASSWORD}@h/db"],
        "postgresql",
    ),
    "hpo-unreachable-postgres": Case(
        "basset-hpo",
        [
            "run",
            "--study",
            "{ws}/cat.toml",
            "--storage",
            f"postgresql+psycopg://basset:{PG_PASSWORD}@127.0.0.1:1/db",
        ],
        "cannot reach PostgreSQL at 127.0.0.1:1 (connection refused)",
        sub=True,
    ),
    "hpo-negative-n-trials": Case(
        "basset-hpo",
        ["run", "--study", "{ws}/cat.toml", "--n-trials", "-3"],
        "--n-trials",
        db="cat",
    ),
    "hpo-gpu-index-missing": Case(
        "basset-hpo", ["run", "--study", "{ws}/cat.toml", "--gpus", "7"], "--gpus 7", db="cat"
    ),
    "hpo-unknown-study": Case("basset-hpo", ["run", "--study", "nosuchstudy"], "nosuchstudy"),
    # --- basset-hpo status / export / report / dashboard on existing databases
    "status-no-database": Case(
        "basset-hpo",
        ["status", "--study", "{ws}/cat.toml", "--storage", "sqlite:///{ws}/none.db"],
        "no study database",
    ),
    "status-study-not-in-database": Case(
        "basset-hpo",
        ["status", "--study", "other", "--storage", "sqlite:///{ws}/studies/cat.db"],
        "no study 'other'",
        db="cat",
    ),
    "status-foreign-sqlite-database": Case(
        "basset-hpo",
        ["status", "--study", "x", "--storage", "sqlite:///{ws}/studies/foreign.db"],
        "not a study database",
        db="foreign",
    ),
    "report-storage-not-a-database": Case(
        "basset-hpo",
        ["report", "--study", "x", "--storage", "sqlite:///{ws}/acts.txt", "-o", "{ws}/r.html"],
        "file is not a database",
    ),
    "export-empty-study": Case(
        "basset-hpo",
        ["export", "--study", "{ws}/empty.toml", "-o", "{ws}/best.txt"],
        "no completed trial",
        db="empty",
        sub=True,
    ),
    "export-trial-that-does-not-exist": Case(
        "basset-hpo",
        ["export", "--study", "{ws}/cat.toml", "--trial", "99", "-o", "{ws}/best.txt"],
        "no trial 99",
        db="cat",
    ),
    "export-into-missing-folder": Case(
        "basset-hpo",
        ["export", "--study", "{ws}/cat.toml", "-o", "{ws}/no/such/dir/best.txt"],
        "does not exist",
        db="cat",
    ),
    "export-confirmed-without-confirmation": Case(
        "basset-hpo",
        ["export", "--study", "{ws}/cat.toml", "--confirmed", "-o", "{ws}/best.txt"],
        "no completed confirmation",
        db="cat",
    ),
    # --- basset-hpo confirm: counts the study cannot give, checked before the confirm study exists
    "confirm-top-zero": Case(
        "basset-hpo",
        ["confirm", "--study", "{ws}/cat.toml", "--top", "0", "--seeds", "2"],
        "--top must be > 0, got 0",
        db="cat",
    ),
    "confirm-negative-seeds": Case(
        "basset-hpo",
        ["confirm", "--study", "{ws}/cat.toml", "--top", "1", "--seeds", "-1"],
        "--seeds must be > 0, got -1",
        db="cat",
    ),
    "confirm-top-beyond-completed": Case(
        "basset-hpo",
        ["confirm", "--study", "{ws}/cat.toml", "--top", "99", "--seeds", "2"],
        "--top 99: study 'cat' has only 3 completed trial(s)",
        db="cat",
        sub=True,
    ),
    "confirm-no-completed-trial": Case(
        "basset-hpo",
        ["confirm", "--study", "{ws}/empty.toml", "--top", "1", "--seeds", "2"],
        "no completed trial",
        db="empty",
    ),
    "report-into-missing-folder": Case(
        "basset-hpo",
        ["report", "--study", "{ws}/cat.toml", "-o", "{ws}/no/such/dir/r.html"],
        "does not exist",
        db="cat",
    ),
    "evaluate-study-not-in-database": Case(
        "basset-hpo",
        ["evaluate", "--study", "other", "--storage", "sqlite:///{ws}/studies/cat.db"],
        "no study 'other'",
        db="cat",
    ),
    "evaluate-no-completed-trial": Case(
        "basset-hpo",
        ["evaluate", "--study", "{ws}/empty.toml"],
        "no completed trial",
        db="empty",
        sub=True,
    ),
    "evaluate-top-zero": Case(
        "basset-hpo", ["evaluate", "--study", "{ws}/cat.toml", "--top", "0"], "--top", db="cat"
    ),
    "evaluate-trial-without-checkpoint": Case(
        "basset-hpo", ["evaluate", "--study", "{ws}/cat.toml"], "saved no best checkpoint", db="cat"
    ),
    "dashboard-port-in-use": Case(
        "basset-hpo",
        ["dashboard", "--study", "{ws}/cat.toml", "--port", "{port}"],
        "in use",
        db="cat",
        sub=True,
    ),
    # --- interpretation
    "motifs-model-not-a-checkpoint": Case(
        "basset-motifs", ["{ws}/acts.txt", "{ws}/tiny.h5", "{ws}/motifs"], "acts.txt"
    ),
    "motifs-no-sequences-in-split": Case(
        "basset-motifs", ["{ws}/m_best.pt", "{ws}/no_test.h5", "{ws}/motifs"], "test"
    ),
    "sat-unknown-target": Case(
        "basset-sat",
        ["--targets", "nosuchlabel", "{ws}/m_best.pt", "{ws}/seqs60.fa", "{ws}/sat"],
        "nosuchlabel",
    ),
    "sat-missing-fasta": Case(
        "basset-sat", ["{ws}/m_best.pt", "{ws}/nope.fa", "{ws}/sat"], "nope.fa"
    ),
}
# --- round two (issue 12). Outputs that cannot be written: a folder or a file in the way, a
# read-only or a full file system. Nothing may be left behind, not even a temp file.
CASES.update(
    {
        "preprocess-output-is-a-folder": Case(
            "basset-preprocess", ["{ws}/seqs.fa", "{ws}/acts.txt", "{ws}/a_folder"], "is a folder"
        ),
        "preprocess-output-under-a-file": Case(
            "basset-preprocess",
            ["{ws}/seqs.fa", "{ws}/acts.txt", "{ws}/a_file/o.h5"],
            "a_file is a file",
        ),
        "preprocess-read-only-fs": Case(
            "basset-preprocess",
            ["{ws}/seqs.fa", "{ws}/acts.txt", "{ro}/o.h5"],
            "Read-only file system",
            mounts=True,
        ),
        "preprocess-disk-full": Case(
            "basset-preprocess",
            ["{ws}/seqs.fa", "{ws}/acts.txt", "{full}/o.h5"],
            "No space left on device",
            mounts=True,
            sub=True,
        ),
        "demo-data-output-is-a-folder": Case(
            "basset-demo-data", ["--n-seqs", "60", "{ws}/a_folder"], "is a folder"
        ),
        "demo-data-output-under-a-file": Case(
            "basset-demo-data", ["--n-seqs", "60", "{ws}/a_file/d.h5"], "is a file"
        ),
        "demo-data-read-only-fs": Case(
            "basset-demo-data",
            ["--n-seqs", "60", "{ro}/d.h5"],
            "Read-only file system",
            mounts=True,
        ),
        "demo-data-disk-full": Case(
            "basset-demo-data",
            ["--n-seqs", "60", "{full}/d.h5"],
            "No space left on device",
            mounts=True,
        ),
        "train-save-under-a-file": Case(
            "basset-train",
            ["-job", "{ws}/small.txt", "-save", "{ws}/a_file/m", "{ws}/tiny.h5"],
            "a_file is a file",
        ),
        "train-save-read-only-fs": Case(
            "basset-train",
            ["-job", "{ws}/small.txt", "-save", "{ro}/m", "{ws}/tiny.h5"],
            "Read-only file system",
            mounts=True,
        ),
        "train-save-disk-full": Case(
            "basset-train",
            ["-job", "{ws}/small.txt", "-max_epochs", "1", "-save", "{full}/m", "{ws}/tiny.h5"],
            "No space left on device",
            mounts=True,
        ),
        "train-result-into-missing-folder": Case(
            "basset-train",
            [
                "-job",
                "{ws}/small.txt",
                "-save",
                "{ws}/never/m",
                "-result",
                "{ws}/nodir/r.txt",
                "{ws}/tiny.h5",
            ],
            "does not exist",
        ),
        "train-result-is-a-folder": Case(
            "basset-train",
            [
                "-job",
                "{ws}/small.txt",
                "-save",
                "{ws}/never/m",
                "-result",
                "{ws}/a_folder",
                "{ws}/tiny.h5",
            ],
            "is a folder",
        ),
        "test-out-dir-is-a-file": Case(
            "basset-test", ["{ws}/m_best.pt", "{ws}/tiny.h5", "{ws}/a_file"], "is a file"
        ),
        "test-out-dir-read-only-fs": Case(
            "basset-test",
            ["{ws}/m_best.pt", "{ws}/tiny.h5", "{ro}/out"],
            "Read-only file system",
            mounts=True,
        ),
        "test-disk-full": Case(
            "basset-test",
            ["{ws}/m_best.pt", "{ws}/tiny.h5", "{full}"],
            "No space left on device",
            mounts=True,
        ),
        "predict-output-is-a-folder": Case(
            "basset-predict", ["{ws}/m_best.pt", "{ws}/seqs.fa", "{ws}/a_folder"], "is a folder"
        ),
        "predict-output-read-only-fs": Case(
            "basset-predict",
            ["{ws}/m_best.pt", "{ws}/seqs.fa", "{ro}/p.tsv"],
            "Read-only file system",
            mounts=True,
        ),
        "predict-disk-full": Case(
            "basset-predict",
            ["{ws}/m_best.pt", "{ws}/seqs.fa", "{full}/p.tsv"],
            "No space left on device",
            mounts=True,
        ),
        "export-output-is-a-folder": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "-o", "{ws}/a_folder"],
            "is a folder",
            db="cat",
        ),
        "export-read-only-fs": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "-o", "{ro}/best.txt"],
            "Read-only file system",
            db="cat",
            mounts=True,
        ),
        "export-model-under-a-file": Case(
            "basset-hpo",
            [
                "export",
                "--study",
                "{ws}/catmodel.toml",
                "-o",
                "{ws}/best.txt",
                "--model",
                "{ws}/a_file/m.pt",
            ],
            "is a file",
            db="catmodel",
        ),
        "export-model-disk-full": Case(
            "basset-hpo",
            [
                "export",
                "--study",
                "{ws}/catmodel.toml",
                "-o",
                "{ws}/best.txt",
                "--model",
                "{full}/m.pt",
            ],
            "No space left on device",
            db="catmodel",
            mounts=True,
        ),
        "report-read-only-fs": Case(
            "basset-hpo",
            ["report", "--study", "{ws}/cat.toml", "-o", "{ro}/r.html"],
            "Read-only file system",
            db="cat",
            mounts=True,
        ),
        "report-disk-full": Case(
            "basset-hpo",
            ["report", "--study", "{ws}/cat.toml", "-o", "{full}/r.html"],
            "No space left on device",
            db="cat",
            mounts=True,
        ),
        "motifs-out-dir-is-a-file": Case(
            "basset-motifs", ["{ws}/m_best.pt", "{ws}/tiny.h5", "{ws}/a_file"], "is a file"
        ),
        "motifs-out-dir-read-only-fs": Case(
            "basset-motifs",
            ["{ws}/m_best.pt", "{ws}/tiny.h5", "{ro}/motifs"],
            "Read-only file system",
            mounts=True,
        ),
        "sat-out-dir-under-a-file": Case(
            "basset-sat", ["{ws}/m_best.pt", "{ws}/seqs60.fa", "{ws}/a_file/sat"], "is a file"
        ),
        "sat-disk-full": Case(
            "basset-sat",
            ["{ws}/m_best.pt", "{ws}/seqs60.fa", "{full}"],
            "No space left on device",
            mounts=True,
        ),
        "run-sqlite-on-read-only-fs": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--storage", "sqlite:///{ro}/x.db"],
            "Read-only file system",
            mounts=True,
        ),
        "run-sqlite-under-a-file": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--storage", "sqlite:///{ws}/a_file/x.db"],
            "is a file",
        ),
        "run-studies-folder-is-a-file": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml"],
            "studies is a file",
            cwd="{ws}/studies_is_a_file",
        ),
        "run-lock-file-is-a-folder": Case(
            "basset-hpo", ["run", "--study", "{ws}/lockcat.toml"], "lockcat.db.lock", db="lockcat"
        ),
        # Data checked before any work
        "train-binary-targets-of-2": Case(
            "basset-train",
            ["-job", "{ws}/small.txt", "{ws}/targets_2.h5"],
            "binary targets must be in [0, 1], found 2",
        ),
        "train-binary-targets-of-minus-1": Case(
            "basset-train", ["-job", "{ws}/small.txt", "{ws}/targets_neg.h5"], "found -1"
        ),
        "train-inf-targets": Case("basset-train", ["{ws}/inf_targets.h5"], "infinite"),
        "train-zero-length-sequences": Case("basset-train", ["{ws}/zero_length.h5"], "length 0"),
        "train-dataset-is-a-group": Case(
            "basset-train", ["{ws}/group.h5"], "train_in is an HDF5 group"
        ),
        "train-zero-targets": Case("basset-train", ["{ws}/zero_targets.h5"], "no targets"),
        "train-duplicate-target-labels": Case("basset-train", ["{ws}/dup_labels.h5"], "repeats t1"),
        "train-labels-are-a-group": Case(
            "basset-train", ["{ws}/labels_group.h5"], "target_labels is an HDF5 group"
        ),
        "train-empty-validation-split": Case(
            "basset-train", ["-job", "{ws}/small.txt", "{ws}/empty_valid.h5"], "no validation"
        ),
        "test-inf-targets-in-test-split": Case(
            "basset-test",
            ["{ws}/m_best.pt", "{ws}/inf_test.h5", "{ws}/out"],
            "test_out has NaN or infinite",
        ),
        "predict-test-split-is-a-group": Case(
            "basset-predict",
            ["{ws}/m_best.pt", "{ws}/test_group.h5", "{ws}/p.tsv"],
            "test_in is an HDF5 group",
        ),
        "motifs-zero-length-sequences": Case(
            "basset-motifs", ["{ws}/m_best.pt", "{ws}/zero_length.h5", "{ws}/motifs"], "length 0"
        ),
        "preprocess-duplicate-target-labels": Case(
            "basset-preprocess",
            ["{ws}/seqs.fa", "{ws}/dup_label_acts.txt", "{ws}/o.h5"],
            "repeated target labels (a)",
        ),
        "preprocess-zero-length-sequences": Case(
            "basset-preprocess", ["{ws}/no_bases.fa", "{ws}/acts.txt", "{ws}/o.h5"], "empty"
        ),
        # Params that passed validation, then crashed
        "train-learning-rate-inf": Case(
            "basset-train",
            ["-job", "{ws}/lr_inf.txt", "{ws}/tiny.h5"],
            "learning_rate must be a finite number > 0",
        ),
        "train-learning-rate-nan": Case(
            "basset-train", ["-job", "{ws}/lr_nan.txt", "{ws}/tiny.h5"], "learning_rate"
        ),
        "train-batch-size-inf": Case(
            "basset-train", ["-job", "{ws}/bs_inf.txt", "{ws}/tiny.h5"], "batch_size needs int"
        ),
        "train-weight-norm-nan": Case(
            "basset-train", ["-job", "{ws}/wn_nan.txt", "{ws}/tiny.h5"], "weight_norm"
        ),
        "train-coef-l2-negative": Case(
            "basset-train",
            ["-job", "{ws}/l2_neg.txt", "{ws}/tiny.h5"],
            "coef_l2 must be a finite number >= 0",
        ),
        "train-coef-l1-inf": Case(
            "basset-train", ["-job", "{ws}/l1_inf.txt", "{ws}/tiny.h5"], "coef_l1"
        ),
        "train-momentum-nan": Case(
            "basset-train", ["-job", "{ws}/momentum_nan.txt", "{ws}/tiny.h5"], "momentum"
        ),
        "train-dropout-nan": Case(
            "basset-train", ["-job", "{ws}/dropout_nan.txt", "{ws}/tiny.h5"], "hidden_dropouts"
        ),
        "train-conv-filters-1e30": Case(
            "basset-train", ["-job", "{ws}/filters_1e30.txt", "{ws}/tiny.h5"], "too large"
        ),
        "train-network-too-large-for-memory": Case(
            "basset-train",
            ["-job", "{ws}/filters_2e9.txt", "{ws}/tiny.h5"],
            "the network is too large: about",
        ),
        "train-hidden-layer-too-large": Case(
            "basset-train",
            ["-job", "{ws}/hidden_huge.txt", "{ws}/tiny.h5"],
            "parameters at batch size 32",
        ),
        "train-batch-larger-than-training-set": Case(
            "basset-train",
            ["-job", "{ws}/bs_big.txt", "{ws}/tiny.h5"],
            "larger than the 120 training",
        ),
        # Flags
        "train-valid-subset-zero": Case(
            "basset-train", ["--valid-subset", "0", "{ws}/tiny.h5"], "--valid-subset: must be > 0"
        ),
        "train-eval-every-negative": Case(
            "basset-train", ["--eval-every", "-5", "{ws}/tiny.h5"], "--eval-every: must be > 0"
        ),
        "motifs-device-cuda-index-missing": Case(
            "basset-motifs",
            ["--device", "cuda:7", "{ws}/m_best.pt", "{ws}/tiny.h5", "{ws}/motifs"],
            "cuda:7",
        ),
        "motifs-device-mps": Case(
            "basset-motifs",
            ["--device", "mps", "{ws}/m_best.pt", "{ws}/tiny.h5", "{ws}/motifs"],
            "mps",
        ),
        "motifs-device-nonsense": Case(
            "basset-motifs",
            ["--device", "gpu0", "{ws}/m_best.pt", "{ws}/tiny.h5", "{ws}/motifs"],
            "gpu0",
        ),
        "sat-device-cuda-index-missing": Case(
            "basset-sat",
            ["--device", "cuda:1", "{ws}/m_best.pt", "{ws}/seqs60.fa", "{ws}/sat"],
            "cuda:1",
        ),
        "sat-device-mps": Case(
            "basset-sat", ["--device", "mps", "{ws}/m_best.pt", "{ws}/seqs60.fa", "{ws}/sat"], "mps"
        ),
        "train-max-epochs-0": Case(
            "basset-train", ["-max_epochs", "0", "{ws}/tiny.h5"], "max_epochs"
        ),
        "train-max-epochs-negative": Case(
            "basset-train", ["--max-epochs", "-4", "{ws}/tiny.h5"], "must be > 0"
        ),
        "train-stagnant-t-negative": Case(
            "basset-train", ["-stagnant_t", "-1", "{ws}/tiny.h5"], "must be >= 0"
        ),
        "train-restart-dict-without-params": Case(
            "basset-train",
            ["-job", "{ws}/small.txt", "-restart", "{ws}/no_params.pt", "{ws}/tiny.h5"],
            "damaged checkpoint",
        ),
        "train-seed-dict-without-model": Case(
            "basset-train",
            ["-job", "{ws}/small.txt", "-seed", "{ws}/no_params.pt", "{ws}/tiny.h5"],
            "damaged checkpoint",
        ),
        "test-model-dict-without-params": Case(
            "basset-test", ["{ws}/no_params.pt", "{ws}/tiny.h5", "{ws}/out"], "damaged checkpoint"
        ),
        "hpo-timeout-nan": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--timeout", "nan"],
            "--timeout",
            db="cat",
        ),
        "hpo-timeout-negative": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--timeout", "-5"],
            "--timeout",
            db="cat",
        ),
        # Invented: more of what a careless user types
        "preprocess-header-only-table": Case(
            "basset-preprocess", ["{ws}/seqs.fa", "{ws}/header_only.txt", "{ws}/o.h5"], "no rows"
        ),
        "preprocess-ragged-table": Case(
            "basset-preprocess", ["{ws}/seqs.fa", "{ws}/ragged.txt", "{ws}/o.h5"], "columns"
        ),
        "preprocess-inf-in-table": Case(
            "basset-preprocess",
            ["{ws}/seqs.fa", "{ws}/inf_acts.txt", "{ws}/o.h5"],
            "not a finite number",
        ),
        "preprocess-duplicate-fasta-ids": Case(
            "basset-preprocess", ["{ws}/dup_ids.fa", "{ws}/acts.txt", "{ws}/o.h5"], "duplicate ids"
        ),
        "preprocess-splits-leave-no-training": Case(
            "basset-preprocess",
            ["-v", "3", "-t", "3", "{ws}/seqs.fa", "{ws}/acts.txt", "{ws}/o.h5"],
            "no training data",
        ),
        "preprocess-extend-zero": Case(
            "basset-preprocess", ["-e", "0", "{ws}/seqs.fa", "{ws}/acts.txt", "{ws}/o.h5"], "extend"
        ),
        "preprocess-valid-fraction-not-a-count": Case(
            "basset-preprocess",
            ["-v", "2.5", "{ws}/seqs.fa", "{ws}/acts.txt", "{ws}/o.h5"],
            "fraction",
        ),
        "preprocess-missing-table": Case(
            "basset-preprocess",
            ["{ws}/seqs.fa", "{ws}/nope.txt", "{ws}/o.h5"],
            "activity table not found",
        ),
        "demo-data-zero-sequences": Case(
            "basset-demo-data", ["--n-seqs", "0", "{ws}/d.h5"], "--n-seqs"
        ),
        "demo-data-too-short": Case(
            "basset-demo-data", ["--seq-len", "3", "{ws}/d.h5"], "--seq-len"
        ),
        "train-params-file-is-a-folder": Case(
            "basset-train", ["-job", "{ws}/a_folder", "{ws}/tiny.h5"], "a_folder"
        ),
        "train-params-file-missing": Case(
            "basset-train", ["-job", "{ws}/nope.txt", "{ws}/tiny.h5"], "params file not found"
        ),
        "train-params-scalar-repeated": Case(
            "basset-train", ["-job", "{ws}/lr_twice.txt", "{ws}/tiny.h5"], "given 2 times"
        ),
        "train-params-three-tokens": Case(
            "basset-train",
            ["-job", "{ws}/three_tokens.txt", "{ws}/tiny.h5"],
            "expected 'key value'",
        ),
        "train-dropout-one": Case(
            "basset-train", ["-job", "{ws}/dropout_one.txt", "{ws}/tiny.h5"], "[0, 1)"
        ),
        "train-unknown-optimizer": Case(
            "basset-train", ["-job", "{ws}/sgd.txt", "{ws}/tiny.h5"], "optimization"
        ),
        "train-data-is-a-folder": Case("basset-train", ["{ws}/a_folder"], "a_folder"),
        "train-device-tpu": Case("basset-train", ["--device", "tpu", "{ws}/tiny.h5"], "tpu"),
        "train-rand-not-a-number": Case("basset-train", ["-rand", "abc", "{ws}/tiny.h5"], "-rand"),
        "train-restart-missing": Case(
            "basset-train",
            ["-job", "{ws}/small.txt", "-restart", "{ws}/nope_check.pt", "{ws}/tiny.h5"],
            "not found",
        ),
        "train-restart-on-other-data": Case(
            "basset-train", ["-restart", "{ws}/m_check.pt", "{ws}/other_len.h5"], "other data"
        ),
        "train-seed-from-other-length": Case(
            "basset-train",
            ["-job", "{ws}/small.txt", "-seed", "{ws}/m_best.pt", "{ws}/other_len.h5"],
            "bp sequences",
        ),
        "test-no-test-split": Case(
            "basset-test", ["{ws}/m_best.pt", "{ws}/no_test.h5", "{ws}/out"], "test"
        ),
        "test-model-for-other-length": Case(
            "basset-test",
            ["{ws}/m_best.pt", "{ws}/other_len.h5", "{ws}/out"],
            "the model takes 60 bp",
        ),
        "test-batch-size-zero": Case(
            "basset-test",
            ["--batch-size", "0", "{ws}/m_best.pt", "{ws}/tiny.h5", "{ws}/out"],
            "batch",
        ),
        "test-model-is-a-folder": Case(
            "basset-test", ["{ws}/a_folder", "{ws}/tiny.h5", "{ws}/out"], "a_folder"
        ),
        "predict-empty-fasta": Case(
            "basset-predict", ["{ws}/m_best.pt", "{ws}/empty.fa", "{ws}/p.tsv"], "empty.fa"
        ),
        "predict-missing-model": Case(
            "basset-predict", ["{ws}/nope.pt", "{ws}/seqs.fa", "{ws}/p.tsv"], "nope.pt"
        ),
        "predict-output-under-a-file": Case(
            "basset-predict", ["{ws}/m_best.pt", "{ws}/seqs.fa", "{ws}/a_file/p.tsv"], "is a file"
        ),
        "predict-device-nonsense": Case(
            "basset-predict",
            ["--device", "cuda:x", "{ws}/m_best.pt", "{ws}/seqs.fa", "{ws}/p.tsv"],
            "cuda:x",
        ),
        "motifs-threshold-above-one": Case(
            "basset-motifs",
            ["--threshold", "1.5", "{ws}/m_best.pt", "{ws}/tiny.h5", "{ws}/motifs"],
            "threshold",
        ),
        "motifs-max-seqs-zero": Case(
            "basset-motifs",
            ["--max-seqs", "0", "{ws}/m_best.pt", "{ws}/tiny.h5", "{ws}/motifs"],
            "max-seqs",
        ),
        "motifs-data-not-hdf5": Case(
            "basset-motifs", ["{ws}/m_best.pt", "{ws}/seqs.fa", "{ws}/motifs"], "not an HDF5 file"
        ),
        "sat-center-longer-than-model": Case(
            "basset-sat",
            ["--center", "99", "{ws}/m_best.pt", "{ws}/seqs60.fa", "{ws}/sat"],
            "--center 99",
        ),
        "sat-center-zero": Case(
            "basset-sat",
            ["--center", "0", "{ws}/m_best.pt", "{ws}/seqs60.fa", "{ws}/sat"],
            "--center",
        ),
        "sat-target-index-out-of-range": Case(
            "basset-sat",
            ["--targets", "9", "{ws}/m_best.pt", "{ws}/seqs60.fa", "{ws}/sat"],
            "index below 3",
        ),
        "sat-model-not-a-checkpoint": Case(
            "basset-sat", ["{ws}/acts.txt", "{ws}/seqs60.fa", "{ws}/sat"], "acts.txt"
        ),
        "hpo-n-trials-zero": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--n-trials", "0"],
            "--n-trials",
            db="cat",
        ),
        "hpo-workers-zero": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--gpus", "none", "--workers", "0"],
            "--workers",
            db="cat",
        ),
        "hpo-trials-per-gpu-zero": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--trials-per-gpu", "0"],
            "--trials-per-gpu",
        ),
        "hpo-gpus-nonsense": Case(
            "basset-hpo", ["run", "--study", "{ws}/cat.toml", "--gpus", "first"], "--gpus"
        ),
        "hpo-data-override-missing": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--data", "{ws}/nope.h5"],
            "nope.h5",
            db="cat",
        ),
        "hpo-data-override-not-hdf5": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--data", "{ws}/acts.txt"],
            "not an HDF5 file",
            db="cat",
        ),
        "hpo-data-binary-targets-of-2": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--data", "{ws}/targets_2.h5"],
            "binary targets must be in [0, 1]",
            db="cat",
        ),
        "hpo-seed-not-a-number": Case(
            "basset-hpo", ["run", "--study", "{ws}/cat.toml", "--seed", "x"], "--seed"
        ),
        "hpo-unknown-command": Case("basset-hpo", ["train", "--study", "cat"], "invalid choice"),
        "hpo-study-name-with-slash": Case(
            "basset-hpo", ["run", "--study", "{ws}/badname.toml"], "name must be"
        ),
        "hpo-grace-not-above-interval": Case(
            "basset-hpo", ["run", "--study", "{ws}/grace.toml"], "grace_period"
        ),
        "hpo-range-low-above-high": Case(
            "basset-hpo", ["run", "--study", "{ws}/lowhigh.toml"], "low must be < high"
        ),
        "hpo-log-range-from-zero": Case(
            "basset-hpo", ["run", "--study", "{ws}/logzero.toml"], "log range needs low > 0"
        ),
        "hpo-range-to-inf": Case("basset-hpo", ["run", "--study", "{ws}/range_inf.toml"], "finite"),
        "hpo-fixed-learning-rate-nan": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/fixed_nan.toml"],
            "learning_rate must be a finite number",
        ),
        "hpo-key-searched-and-fixed": Case(
            "basset-hpo", ["run", "--study", "{ws}/both.toml"], "either searched or fixed"
        ),
        "hpo-enqueue-missing-file": Case(
            "basset-hpo", ["run", "--study", "{ws}/enqueue_missing.toml"], "enqueue[0]"
        ),
        "status-trial-db-is-a-folder": Case(
            "basset-hpo",
            ["status", "--study", "x", "--storage", "sqlite:///{ws}/a_folder"],
            "a_folder",
        ),
        "export-negative-trial": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "--trial", "-1", "-o", "{ws}/best.txt"],
            "no trial -1",
            db="cat",
        ),
        "export-json-under-a-file": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "--json", "-o", "{ws}/a_file/b.json"],
            "is a file",
            db="cat",
        ),
        "report-output-is-a-folder": Case(
            "basset-hpo",
            ["report", "--study", "{ws}/cat.toml", "-o", "{ws}/a_folder"],
            "is a folder",
            db="cat",
        ),
        "dashboard-port-out-of-range": Case(
            "basset-hpo",
            ["dashboard", "--study", "{ws}/cat.toml", "--port", "70000"],
            "--port",
            db="cat",
        ),
        # HPO pre-checks (the study must be untouched, nothing may start)
        "run-space-range-changed": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat_wider.toml"],
            "conv_filters_0 [4, 12] -> [4, 16]",
            db="cat",
            sub=True,
        ),
        "run-space-choices-changed": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/choices_more.toml"],
            "choices [8] -> choices [4, 8]",
            db="choices",
        ),
        "run-space-key-no-longer-searched": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat_lr_fixed.toml"],
            "learning_rate is no longer searched",
            db="cat",
        ),
        "run-enqueue-outside-the-space": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/enqueue_outside.toml"],
            "learning_rate = 0.5 is outside",
        ),
        "run-batch-choice-larger-than-training-set": Case(
            "basset-hpo", ["run", "--study", "{ws}/bigbatch.toml"], "batch_size 512"
        ),
        "run-password-with-an-at-sign": Case(
            "basset-hpo",
            [
                "run",
                "--study",
                "{ws}/cat.toml",
                "--storage",
                f"postgresql+psycopg://basset:{PG_PASSWORD}@x@127.0.0.1:1/db",
            ],
            "cannot reach PostgreSQL at 127.0.0.1:1 (connection refused)",
        ),
        "run-psycopg2-not-installed": Case(
            "basset-hpo",
            [
                "run",
                "--study",
                "{ws}/cat.toml",
                "--storage",
                f"postgresql+psycopg2://basset:{PG_PASSWORD}@127.0.0.1/db",
            ],
            "pip install psycopg2-binary",
        ),
        "status-unknown-postgres-driver": Case(
            "basset-hpo",
            [
                "status",
                "--study",
                "cat",
                "--storage",
                f"postgresql+nodriver://basset:{PG_PASSWORD}@127.0.0.1/db",
            ],
            "unknown PostgreSQL driver",
        ),
        "run-sqlite-on-full-disk": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--storage", "sqlite:///{full}/x.db"],
            "full",
            mounts=True,
        ),
    }
)
# --- round three (issue 25), the service: URLs SQLAlchemy cannot parse, credentials in every
# form of URL, seeds out of range, study names that are paths
PG_QUERY = f"postgresql+psycopg:///db?user=basset&password={PG_PASSWORD}&host=127.0.0.1&port=1"
CASES.update(
    {
        "run-storage-port-not-a-number": Case(
            "basset-hpo",
            [
                "run",
                "--study",
                "{ws}/cat.toml",
                "--storage",
                f"postgresql+psycopg://u:{PG_PASSWORD}@h:notaport/db",
            ],
            "host:port cannot be read",
            db="cat",
        ),
        "status-storage-port-5432x": Case(
            "basset-hpo",
            ["status", "--study", "cat", "--storage", "postgresql+psycopg://u@h:5432x/db"],
            "not a storage URL",
            sub=True,
        ),
        "evaluate-storage-unclosed-ipv6": Case(
            "basset-hpo",
            [
                "evaluate",
                "--study",
                "cat",
                "--storage",
                f"postgresql+psycopg://u:{PG_PASSWORD}@[::1/db",
            ],
            "not a storage URL",
        ),
        "export-storage-port-empty-brackets": Case(
            "basset-hpo",
            [
                "export",
                "--study",
                "cat",
                "--storage",
                "postgresql+psycopg://u@[]:x/db",
                "-o",
                "{ws}/best.txt",
            ],
            "not a storage URL",
        ),
        "status-password-in-query": Case(
            "basset-hpo",
            ["status", "--study", "cat", "--storage", PG_QUERY],
            "cannot reach PostgreSQL at 127.0.0.1:1",
            sub=True,
        ),
        "run-password-in-query": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--storage", PG_QUERY],
            "cannot reach PostgreSQL at 127.0.0.1:1",
        ),
        "run-sslpassword-in-query": Case(
            "basset-hpo",
            [
                "run",
                "--study",
                "{ws}/cat.toml",
                "--storage",
                f"postgresql+psycopg://basset@127.0.0.1:1/db?sslpassword={PG_PASSWORD}",
            ],
            "cannot reach PostgreSQL",
        ),
        "run-password-in-query-unknown-driver": Case(
            "basset-hpo",
            [
                "run",
                "--study",
                "{ws}/cat.toml",
                "--storage",
                f"postgresql+nodriver:///db?password={PG_PASSWORD}",
            ],
            "unknown PostgreSQL driver",
        ),
        "run-password-in-unparseable-url": Case(
            "basset-hpo",
            [
                "run",
                "--study",
                "{ws}/cat.toml",
                "--storage",
                f"postgresql+psycopg://u:{PG_PASSWORD}@h:x/db?password={PG_PASSWORD}",
            ],
            "not a storage URL",
        ),
        "run-storage-with-a-newline": Case(
            "basset-hpo",
            [
                "run",
                "--study",
                "{ws}/cat.toml",
                "--storage",
                f"postgresql+psycopg://u:{PG_PASSWORD}@h/db\nx",
            ],
            "control character",
            db="cat",
        ),
        "run-seed-negative": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--seed", "-1"],
            "--seed must be in [0, 2147483647], got -1",
            db="cat",
            sub=True,
        ),
        "run-seed-beyond-2-32": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--seed", str(2**32)],
            "--seed must be in",
            db="cat",
        ),
        "run-toml-seed-huge": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/seed_huge.toml"],
            "seed must be in [0, 2147483647], got 99999999999999999",
        ),
        "run-toml-seed-negative": Case(
            "basset-hpo", ["run", "--study", "{ws}/seed_negative.toml"], "seed must be in"
        ),
        "slurm-toml-seed-huge": Case(
            "basset-hpo",
            [
                "slurm",
                "--study",
                "{ws}/seed_huge.toml",
                "--n-trials",
                "2",
                "--tasks",
                "1",
                "--dry-run",
            ],
            "seed must be in",
        ),
        "run-study-named-dotdot": Case(
            "basset-hpo", ["run", "--study", "{ws}/dotdot.toml"], "not only dots"
        ),
        "run-study-named-dot": Case(
            "basset-hpo", ["run", "--study", "{ws}/dot.toml"], "not only dots"
        ),
        "run-study-name-with-nul": Case(
            "basset-hpo", ["run", "--study", "{ws}/nul.toml"], "name must be"
        ),
        "run-study-name-with-backslash": Case(
            "basset-hpo", ["run", "--study", "{ws}/backslash.toml"], "name must be"
        ),
        "status-study-named-dotdot": Case(
            "basset-hpo", ["status", "--study", ".."], "not only dots"
        ),
        "export-study-name-with-slash": Case(
            "basset-hpo", ["export", "--study", "../nosuch", "-o", "{ws}/best.txt"], "name must be"
        ),
    }
)
# --- round three (issue 25): an output never writes over an input, a study's files or another
# output, however it is spelled (relative, through a symlink, a hard link)
OVER = "would overwrite"
CASES.update(
    {
        "export-over-the-study-database": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "-o", "{ws}/studies/cat.db"],
            f"{OVER} the study's database",
            db="cat",
            sub=True,
        ),
        "export-over-the-database-wal": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "-o", "{ws}/studies/cat.db-wal"],
            f"{OVER} the study database's wal file",
            db="cat",
        ),
        "export-over-the-database-shm": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "--json", "-o", "{ws}/studies/cat.db-shm"],
            "shm file",
            db="cat",
        ),
        "export-over-the-database-journal": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "-o", "{ws}/studies/cat.db-journal"],
            "journal file",
            db="cat",
        ),
        "export-over-the-study-lock": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "-o", "{ws}/studies/cat.db.lock"],
            "lock file",
            db="cat",
        ),
        "export-over-the-database-relative": Case(
            "basset-hpo",
            ["export", "--study", "cat.toml", "-o", "studies/../studies/./cat.db"],
            f"{OVER} the study's database",
            db="cat",
        ),
        "export-over-the-database-by-symlink": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "-o", "{ws}/db_link.txt"],
            f"{OVER} the study's database",
            db="cat",
        ),
        "export-over-the-database-by-symlinked-folder": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "-o", "{ws}/studies_link/cat.db"],
            f"{OVER} the study's database",
            db="cat",
        ),
        "export-over-the-database-by-hard-link": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "-o", "{ws}/db_hardlink.db"],
            f"{OVER} the study's database",
            db="cat",
        ),
        "export-model-over-the-database": Case(
            "basset-hpo",
            [
                "export",
                "--study",
                "{ws}/catmodel.toml",
                "-o",
                "{ws}/best.txt",
                "--model",
                "{ws}/studies/catmodel.db",
            ],
            "--model",
            db="catmodel",
        ),
        "export-model-and-params-to-one-file": Case(
            "basset-hpo",
            [
                "export",
                "--study",
                "{ws}/catmodel.toml",
                "-o",
                "{ws}/s.txt",
                "--model",
                "{ws}/s.txt",
            ],
            f"{OVER} the --model output",
            db="catmodel",
            sub=True,
        ),
        "export-model-and-params-to-one-file-relative": Case(
            "basset-hpo",
            [
                "export",
                "--study",
                "{ws}/catmodel.toml",
                "-o",
                "s.txt",
                "--model",
                "./a_folder/../s.txt",
            ],
            f"{OVER} the --model output",
            db="catmodel",
        ),
        "export-model-over-its-own-checkpoint": Case(
            "basset-hpo",
            [
                "export",
                "--study",
                "{ws}/catmodel.toml",
                "-o",
                "{ws}/best.txt",
                "--model",
                "{ws}/m_best.pt",
            ],
            "a checkpoint of trial 2 of catmodel",
            db="catmodel",
        ),
        "export-params-over-a-checkpoint": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/catmodel.toml", "-o", "{ws}/m_best.pt"],
            "a checkpoint of trial 2",
            db="catmodel",
        ),
        "export-over-the-study-file": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "-o", "{ws}/cat.toml"],
            f"{OVER} the study file",
            db="cat",
        ),
        "export-over-the-data": Case(
            "basset-hpo",
            ["export", "--study", "{ws}/cat.toml", "-o", "{ws}/tiny.h5"],
            f"{OVER} the data of study cat",
            db="cat",
        ),
        "report-over-the-study-database": Case(
            "basset-hpo",
            ["report", "--study", "{ws}/cat.toml", "-o", "{ws}/studies/cat.db"],
            f"{OVER} the study's database",
            db="cat",
        ),
        "report-over-the-study-file": Case(
            "basset-hpo",
            ["report", "--study", "{ws}/cat.toml", "-o", "{ws}/cat.toml"],
            "the study file",
            db="cat",
        ),
        "report-over-the-database-by-symlink": Case(
            "basset-hpo",
            ["report", "--study", "{ws}/cat.toml", "-o", "{ws}/db_link.txt"],
            "the study's database",
            db="cat",
        ),
    }
)
# --- round three (issue 25): a study's identity (its data, its database)
CASES.update(
    {
        "run-data-of-another-length": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--data", "{ws}/other_len.h5"],
            "is not the data study cat was created with (40 bp sequences",
            db="cat",
            sub=True,
        ),
        "run-data-same-shape-other-content": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--data", "{ws}/other_seqs.h5"],
            "other sequences or targets",
            db="cat",
        ),
        "run-data-other-labels": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--data", "{ws}/other_labels.h5"],
            "other target labels",
            db="cat",
        ),
        "confirm-data-of-another-length": Case(
            "basset-hpo",
            [
                "confirm",
                "--study",
                "{ws}/cat.toml",
                "--top",
                "1",
                "--seeds",
                "1",
                "--data",
                "{ws}/other_len.h5",
            ],
            "is not the data study cat was created with",
            db="cat",
        ),
        "evaluate-data-of-another-length": Case(
            "basset-hpo",
            ["evaluate", "--study", "{ws}/cat.toml", "--data", "{ws}/other_len.h5"],
            "is not the data study cat",
            db="cat",
        ),
        "run-foreign-sqlite-database": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--storage", "sqlite:///{ws}/studies/foreign.db"],
            "not a study database (no Optuna tables) (it holds t)",
            db="foreign",
            sub=True,
        ),
        "run-storage-is-a-text-file": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--storage", "sqlite:///{ws}/acts.txt"],
            "file is not a database",
        ),
        "run-damaged-study": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/cat.toml", "--storage", "sqlite:///{ws}/studies/damaged.db"],
            f"damaged study database: Optuna's table(s) {DROPPED}",
            db="damaged",
        ),
        "status-damaged-study": Case(
            "basset-hpo",
            ["status", "--study", "cat", "--storage", "sqlite:///{ws}/studies/damaged.db"],
            "damaged study database",
            db="damaged",
            sub=True,
        ),
        "report-damaged-study": Case(
            "basset-hpo",
            [
                "report",
                "--study",
                "cat",
                "--storage",
                "sqlite:///{ws}/studies/damaged.db",
                "-o",
                "{ws}/r.html",
            ],
            "damaged study database",
            db="damaged",
        ),
        "export-damaged-study": Case(
            "basset-hpo",
            [
                "export",
                "--study",
                "cat",
                "--storage",
                "sqlite:///{ws}/studies/damaged.db",
                "-o",
                "{ws}/best.txt",
            ],
            "damaged study database",
            db="damaged",
        ),
    }
)
# --- round three (issue 25): counts bounded by what can be stored, refused before planning
CASES.update(
    {
        "confirm-seeds-beyond-what-can-be-stored": Case(
            "basset-hpo",
            ["confirm", "--study", "{ws}/cat.toml", "--top", "1", "--seeds", "100000000"],
            "--seeds must be at most 10000",
            db="cat",
            sub=True,
        ),
        "confirm-top-beyond-what-can-be-stored": Case(
            "basset-hpo",
            ["confirm", "--study", "{ws}/cat.toml", "--top", "100000000", "--seeds", "1"],
            "--top must be at most 10000",
            db="cat",
        ),
        "confirm-both-huge": Case(
            "basset-hpo",
            [
                "confirm",
                "--study",
                "{ws}/cat.toml",
                "--top",
                "99999999999",
                "--seeds",
                "99999999999",
            ],
            "at most",
            db="cat",
        ),
    }
)
# --- round three (issue 25): a space whose top builds a network too large, before any trial
CASES.update(
    {
        "run-space-conv-filters-up-to-1e11": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/huge_filters.toml", "-q"],
            "space: its largest network",
            sub=True,
        ),
        "run-space-hidden-units-up-to-1e12": Case(
            "basset-hpo",
            ["run", "--study", "{ws}/huge_hidden.toml"],
            "lower the upper ends of its ranges",
        ),
    }
)
CASES["demo-data-name-too-long"] = Case(
    "basset-demo-data", ["--n-seqs", "60", "{ws}/" + "x" * 300 + ".h5"], "File name too long"
)
if Path("/proc/self").is_dir():  # a folder that refuses new files, even to root
    CASES["train-result-into-proc"] = Case(
        "basset-train",
        [
            "-job",
            "{ws}/small.txt",
            "-save",
            "{ws}/never/m",
            "-result",
            "/proc/r.txt",
            "{ws}/tiny.h5",
        ],
        "cannot write into /proc",
    )
    CASES["export-into-proc"] = Case(
        "basset-hpo",
        ["export", "--study", "{ws}/cat.toml", "-o", "/proc/best.txt"],
        "cannot write into /proc",
        db="cat",
    )
if not HAS_CUDA:
    CASES["run-gpus-all-before-demo-data"] = Case(
        "basset-hpo",
        ["run", "--study", "{ws}/demo_gen.toml", "--gpus", "all"],
        "CUDA is not available",
    )
if not HAS_CUDA:
    CASES["train-cuda-without-cuda"] = Case("basset-train", ["-cuda", "{ws}/tiny.h5"], "CUDA")


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every bad (and the few good) inputs the cases need, made once."""
    ws = tmp_path_factory.mktemp("bad_inputs")
    data = tiny_data()
    write_h5(ws / "tiny.h5", data)
    _h5_variants(ws)
    write_h5(ws / "other_seqs.h5", make_data(n_train=120, n_valid=50, n_test=30, seq_len=60,
                                              num_targets=3, seed=5))
    relabelled = make_data(n_train=120, n_valid=50, n_test=30, seq_len=60, num_targets=3, seed=3)
    relabelled.target_labels = ["x", "y", "z"]
    write_h5(ws / "other_labels.h5", relabelled)
    write_h5(ws / "other_len.h5", make_data(n_train=150, n_valid=20, n_test=10, seq_len=40,
                                             num_targets=3, seed=4))
    (ws / "a_folder").mkdir()
    (ws / "a_file").write_text("not a folder\n")
    (ws / "studies_is_a_file").mkdir()
    (ws / "studies_is_a_file" / "studies").write_text("not a folder\n")
    _params_files(ws)
    _tables_and_fasta(ws)
    torch.save({"format": FORMAT, "version": VERSION}, ws / "no_params.pt")
    params = JobParams(conv_filters=[4], conv_filter_sizes=[5], pool_width=[2], hidden_units=[8],
                       hidden_dropouts=[0.1], batch_size=32)
    train(params, data, options=TrainOptions(max_epochs=1, save_prefix=ws / "m", quiet=True))
    (ws / "samples.txt").write_text("a nowhere.bed\n")
    (ws / "two.bed").write_text("s0\t5\n")
    (ws / "samples2.txt").write_text("a two.bed\n")
    torch.save(_Evil(), ws / "evil.pt")  # weights_only=True refuses to unpickle it
    _studies(ws)
    mounted = _mount_tmpfs(ws)
    yield ws
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)


def _mount_tmpfs(ws: Path) -> list[Path]:
    """{ws}/ro: a read-only file system; {ws}/full: one with no byte left. None without the
    right to mount."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return []
    ro, full = ws / "ro", ws / "full"
    ro.mkdir()
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(ro)],
                      capture_output=True).returncode != 0:
        ro.rmdir()
        full.rmdir()
        return []
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], check=True)
        fill_file_system(full / "filler")
    except BaseException:  # never leave a mount behind
        for point in (full, ro):
            subprocess.run(["umount", str(point)], capture_output=True)
        raise
    return [ro, full]


def _params_files(ws: Path) -> None:
    small = "batch_size 32\n"
    net = "conv_filters 4\nconv_filter_sizes 5\npool_width 2\nhidden_units 8\nbatch_size 32\n"
    files = {
        "small.txt": small,
        "unknown_key.txt": "conv_filterz 10\n" + small,
        "bad_value.txt": "learning_rate fast\n" + small,
        "too_deep.txt": small + "conv_filters 4\nconv_filter_sizes 9\npool_width 4\n" * 4,
        "lr_inf.txt": net + "learning_rate inf\n",
        "lr_nan.txt": net + "learning_rate nan\n",
        "bs_inf.txt": "batch_size inf\n",
        "wn_nan.txt": net + "weight_norm nan\n",
        "l2_neg.txt": net + "coef_l2 -5\n",
        "l1_inf.txt": net + "coef_l1 inf\n",
        "momentum_nan.txt": net + "momentum nan\n",
        "dropout_nan.txt": net + "hidden_dropouts nan\n",
        "filters_1e30.txt": "conv_filters 1e30\nconv_filter_sizes 5\n" + small,
        "filters_2e9.txt": "conv_filters 2000000000\nconv_filter_sizes 5\n" + small,
        "hidden_huge.txt": "conv_filters 4\nconv_filter_sizes 5\nhidden_units 1e12\n" + small,
        "bs_big.txt": net.replace("batch_size 32", "batch_size 500"),
        "lr_twice.txt": net + "learning_rate 0.01\nlearning_rate 0.02\n",
        "three_tokens.txt": net + "learning_rate 0.01 0.02\n",
        "dropout_one.txt": net + "hidden_dropouts 1\n",
        "sgd.txt": net + "optimization sgd\n",
    }
    for name, text in files.items():
        (ws / name).write_text(text)


def _tables_and_fasta(ws: Path) -> None:
    ids = [f"s{i}" for i in range(6)]
    (ws / "seqs.fa").write_text("".join(f">{i}\nACGTACGTAC\n" for i in ids))
    (ws / "seqs60.fa").write_text("".join(f">{i}\n{'ACGTT' * 12}\n" for i in ids))
    (ws / "other_ids.fa").write_text("".join(f">x{i}\nACGTACGTAC\n" for i in range(6)))
    (ws / "dup_ids.fa").write_text("".join(f">s{i % 5}\nACGTACGTAC\n" for i in range(6)))
    (ws / "no_bases.fa").write_text("".join(f">{i}\n" for i in ids))
    (ws / "empty.fa").write_text("")
    rows = "".join(f"{i}\t{n % 2}\t1\n" for n, i in enumerate(ids))
    (ws / "acts.txt").write_text("a\tb\n" + rows)
    (ws / "dup_label_acts.txt").write_text("a\ta\n" + rows)
    (ws / "header_only.txt").write_text("a\tb\n")
    (ws / "ragged.txt").write_text("a\tb\n" + rows + "s9\t1\n")
    (ws / "inf_acts.txt").write_text("a\tb\n" + rows.replace("s3\t1", "s3\tinf"))
    (ws / "bad_acts.txt").write_text("a\tb\n" + "".join(f"{i}\tyes\t1\n" for i in ids))
    (ws / "empty.txt").write_text("")


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

    def set_value(dataset: str, row: int, col: int, value: float) -> Callable[[h5py.File], None]:
        def change(h5: h5py.File) -> None:
            y = h5[dataset][:].astype(np.float32)
            y[row, col] = value
            del h5[dataset]
            h5[dataset] = y
        return change

    def replace(name: str, make: Callable[[h5py.File], object]) -> Callable[[h5py.File], None]:
        def change(h5: h5py.File) -> None:
            del h5[name]
            make(h5)
        return change

    def zero_length(h5: h5py.File) -> None:
        for split in ("train", "valid", "test"):
            n = h5[f"{split}_in"].shape[0]
            del h5[f"{split}_in"]
            h5[f"{split}_in"] = np.zeros((n, 4, 1, 0), np.float16)

    def zero_targets(h5: h5py.File) -> None:
        for split in ("train", "valid", "test"):
            n = h5[f"{split}_out"].shape[0]
            del h5[f"{split}_out"]
            h5[f"{split}_out"] = np.zeros((n, 0), np.float32)
        del h5["target_labels"]

    def empty_valid(h5: h5py.File) -> None:
        for part, shape in (("in", (0, 4, 1, 60)), ("out", (0, 3))):
            del h5[f"valid_{part}"]
            h5[f"valid_{part}"] = np.zeros(shape, np.float16 if part == "in" else np.float32)

    variant("targets_2.h5", set_value("train_out", 5, 0, 2.0))
    variant("targets_neg.h5", set_value("train_out", 7, 2, -1.0))
    variant("inf_targets.h5", set_value("valid_out", 3, 1, np.inf))
    variant("inf_test.h5", set_value("test_out", 0, 0, -np.inf))
    variant("zero_length.h5", zero_length)
    variant("group.h5", replace("train_in", lambda h5: h5.create_group("train_in")))
    variant("test_group.h5", replace("test_in", lambda h5: h5.create_group("test_in")))
    variant(
        "labels_group.h5", replace("target_labels", lambda h5: h5.create_group("target_labels"))
    )
    variant("zero_targets.h5", zero_targets)
    variant("dup_labels.h5", replace("target_labels", lambda h5: h5.create_dataset(
        "target_labels", data=np.array([b"t0", b"t1", b"t1"]))))
    variant("empty_valid.h5", empty_valid)
    variant("wrong_shape.h5", wrong_shape)
    variant("scrambled.h5", scrambled)
    variant("nan_targets.h5", nan_targets)
    variant("no_test.h5", lambda h5: (h5.__delitem__("test_in"), h5.__delitem__("test_out")))


def _studies(ws: Path) -> None:
    good = study_toml(ws, name="cat", data=ws / "tiny.h5")
    text = good.read_text()
    (ws / "syntax.toml").write_text(text.replace("max_epochs = 3", "max_epochs = = 3"))
    (ws / "sampler.toml").write_text(text.replace('type = "tpe"', 'type = "bayes"'))
    (ws / "pruner.toml").write_text(text.replace('type = "none"', 'type = "bohb"'))
    (ws / "space.toml").write_text(text.replace("num_conv = [1, 2]", "num_convs = [1, 2]"))
    study_toml(ws, name="empty", data=ws / "tiny.h5")
    study_toml(ws, name="lockcat", data=ws / "tiny.h5")
    study_toml(ws, name="catmodel", data=ws / "tiny.h5")
    broken = {
        "badname": text.replace('name = "cat"', 'name = "a/b"'),
        "grace": text.replace("interval = 0", "interval = 10\ngrace_period = 5"),
        "lowhigh": text.replace("conv_filters = [4, 12]", "conv_filters = [12, 4]"),
        "logzero": text.replace("low = 1e-3, high = 3e-2", "low = 0.0, high = 3e-2"),
        "range_inf": text.replace("low = 1e-3, high = 3e-2", "low = 1e-3, high = inf"),
        "fixed_nan": text.replace("learning_rate = {", "# learning_rate = {").replace(
            "batch_size = 32", "batch_size = 32\nlearning_rate = nan"
        ),
        "both": text.replace("batch_size = 32", "batch_size = 32\nconv_filters = 8"),
        "enqueue_missing": text.replace(
            'name = "cat"', f'name = "cat"\nenqueue = ["{ws}/nope_params.txt"]'
        ),
        "cat_wider": text.replace("conv_filters = [4, 12]", "conv_filters = [4, 16]"),
        "cat_lr_fixed": text.replace("learning_rate = {", "# learning_rate = {").replace(
            "batch_size = 32", "batch_size = 32\nlearning_rate = 0.01"
        ),
        "enqueue_outside": text.replace(
            'name = "cat"',
            'name = "outside"\nenqueue = [{conv_filters = '
            "[8], conv_filter_sizes = [5], pool_width = [2], hidden_units = [8], "
            "batch_size = 32, learning_rate = 0.5}]",
        ),
        "bigbatch": text.replace('name = "cat"', 'name = "bigbatch"').replace(
            "[fixed]\nbatch_size = 32", "batch_size = { choices = [32, 512] }\n[fixed]"
        ),
        "choices_more": text.replace('name = "cat"', 'name = "choices"').replace(
            "conv_filters = [4, 12]", "conv_filters = { choices = [4, 8] }"
        ),
        "seed_huge": text.replace('name = "cat"', 'name = "cat"\nseed = 99999999999999999'),
        "seed_negative": text.replace('name = "cat"', 'name = "cat"\nseed = -3'),
        "dotdot": text.replace('name = "cat"', 'name = ".."'),
        "dot": text.replace('name = "cat"', 'name = "."'),
        "nul": text.replace('name = "cat"', 'name = "a\\u0000b"'),
        "backslash": text.replace('name = "cat"', 'name = "a\\\\b"'),
        "huge_filters": text.replace('name = "cat"', 'name = "huge"').replace(
            "conv_filters = [4, 12]", "conv_filters = { low = 4, high = 100000000000, log = true }"
        ),
        "huge_hidden": text.replace('name = "cat"', 'name = "huge"').replace(
            "hidden_units = [8, 24]", "hidden_units = { low = 8, high = 1000000000000, log = true }"
        ),
        "demo_gen": text.replace('name = "cat"', 'name = "gen"\ngenerate_demo_data = true').replace(
            str(ws / "tiny.h5"), str(ws / "never_made.h5")
        ),
    }
    for name, broken_text in broken.items():
        (ws / f"{name}.toml").write_text(broken_text)
    (ws / "choices.toml").write_text(broken["choices_more"].replace("[4, 8]", "[8]"))
    (ws / "studies").mkdir()
    with sqlite3.connect(ws / "studies" / "foreign.db") as conn:  # another program's database
        conn.execute("create table t (x integer)")
    for name, n_trials in (("cat", 3), ("empty", 0), ("lockcat", 0), ("catmodel", 3),
                           ("choices", 1)):
        config = load_study(str(ws / f"{name}.toml"))
        url = f"sqlite:///{ws}/studies/{name}.db"
        prepare_study(config, url)
        # The fake trainer saves no model: catmodel's last trial lends one.
        fake = _lending(ws / "m_best.pt", n_trials) if name == "catmodel" else quick_train
        if n_trials:
            run_trials(RunPlan(config=config, url=url, n_trials=n_trials, devices=["cpu"],
                               threads=1, train_fn=fake), 0)
        # Everything into the main file, so that only a real write can change its bytes (the
        # last connection to close would otherwise move pending WAL pages into it).
        with sqlite3.connect(ws / "studies" / f"{name}.db") as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(ws / "studies" / "cat.db", ws / "studies" / "damaged.db")
    with sqlite3.connect(ws / "studies" / "damaged.db") as conn:  # an Optuna table dropped
        conn.execute(f"DROP TABLE {DROPPED}")
    with sqlite3.connect(ws / "studies" / "damaged.db") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (ws / "db_link.txt").symlink_to(ws / "studies" / "cat.db")  # other names of a database
    (ws / "studies_link").symlink_to(ws / "studies")
    os.link(ws / "studies" / "cat.db", ws / "db_hardlink.db")
    lock = ws / "studies" / "lockcat.db.lock"  # something in the way of the study lock
    lock.unlink()
    lock.mkdir()


def _lending(model: Path, last: int) -> TrainFn:
    """quick_train whose `last`th trial reports `model` as its best checkpoint."""
    calls = []

    def fake(params: JobParams, data: BassetData, *, options: TrainOptions, hooks: TrainHooks,
             resident: ResidentData | None = None) -> TrainResult:
        calls.append(options)
        result = quick_train(params, data, options=options, hooks=hooks)
        return replace(result, best_path=model) if len(calls) == last else result
    return fake


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


def _fill(text: str, ws: Path, port: int) -> str:
    return (text.replace("{ws}", str(ws)).replace("{port}", str(port))
            .replace("{ro}", str(ws / "ro")).replace("{full}", str(ws / "full")))


def _argv(case: Case, ws: Path, port: int) -> list[str]:
    return [_fill(a, ws, port) for a in case.args]


def _tree(ws: Path) -> dict[str, int]:
    """Every path under the workspace with its size (SQLite's -wal/-shm aside: the digest
    covers the log, and a reader may create the shared-memory index)."""
    return {str(p.relative_to(ws)): (p.stat().st_size if p.is_file() else -1)
            for p in ws.rglob("*") if not p.name.endswith(("-wal", "-shm"))}


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
    if case.mounts and not (ws / "full").is_dir():
        pytest.skip("needs tmpfs mounts (root with the right to mount)")
    cwd = Path(_fill(case.cwd, ws, busy_port))
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("BASSET_HPO_STORAGE", raising=False)
    db = ws / "studies" / f"{case.db}.db" if case.db else None
    before = _digest(db) if db else None
    files = _tree(ws)
    argv = _argv(case, ws, busy_port)
    code, err = (
        _in_process(case, argv, capsys) if how == "in-process" else _subprocess(case, argv, cwd)
    )
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"{name}: stderr was {err!r}"
    assert code == 2, f"{name}: exit {code}, stderr {err!r}"
    assert "Traceback" not in err
    assert case.says in err, f"{name}: {err!r} does not say {case.says!r}"
    assert PG_PASSWORD not in err
    if db is not None:
        assert _digest(db) == before, f"{name} changed {db}"
    assert _tree(ws) == files, f"{name} left files behind (or changed some)"


def test_the_catalogue_covers_every_command() -> None:
    assert len(CASES) >= 200
    assert {case.script for case in CASES.values()} == set(SCRIPTS)
    hpo_commands = {case.args[0] for case in CASES.values() if case.script == "basset-hpo"}
    assert hpo_commands >= {"run", "confirm", "status", "evaluate", "export", "report",
                            "dashboard"}

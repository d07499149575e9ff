"""One read-only copy of the data per host (basset.data.shared): the same numbers as load_data,
compact targets, writes refused loudly, the folder cleaned up (one load for the workers of a
run: tests/hpo/test_shared_run.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import basset.data.h5read as h5read
import basset.data.shared as shared
from basset.data.h5read import load_data
from basset.data.shared import open_shared, remove_stale, shared_data, write_shared
from hpo_testutil import tiny_data, write_h5


def test_the_shared_copy_holds_what_load_data_reads(tiny_h5: Path, tmp_path: Path) -> None:
    write_shared(tiny_h5, tmp_path / "copy")
    got, want = open_shared(tmp_path / "copy"), load_data(tiny_h5)
    assert got.target_labels == want.target_labels
    for name in ("train", "valid", "test"):
        mine, theirs = getattr(got, name), getattr(want, name)
        np.testing.assert_array_equal(mine.seqs, theirs.seqs)
        np.testing.assert_array_equal(mine.targets, theirs.targets)
        assert mine.targets.dtype == np.uint8  # 0/1 targets: a byte each, not float32
        assert isinstance(mine.seqs, np.memmap) and not mine.seqs.flags.writeable


def test_a_write_to_the_shared_copy_fails_loudly(tiny_h5: Path, tmp_path: Path) -> None:
    write_shared(tiny_h5, tmp_path / "copy")
    data = open_shared(tmp_path / "copy")
    with pytest.raises(ValueError, match="read-only"):
        data.train.seqs[0, 0] = 3
    with pytest.raises(ValueError, match="read-only"):
        data.valid.targets[:] = 1
    # Through the trainer's tensors (which share the pages) a write ends the process.
    code = ("import sys; from basset.data.shared import open_shared; "
            "from basset.training.resident import ResidentData; "
            "r = ResidentData(open_shared(sys.argv[1]), 'cpu'); r.train.codes[0, 0] = 3")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "copy")],
                          capture_output=True, check=False)
    assert done.returncode == -11  # SIGSEGV, not a silent change of every worker's data
    np.testing.assert_array_equal(open_shared(tmp_path / "copy").train.seqs,
                                  load_data(tiny_h5).train.seqs)


def test_targets_that_are_not_all_0_or_1_stay_float32(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiny_data()
    data.train.targets = data.train.targets.astype(np.float32)
    data.train.targets[-1, 0] = 0.5  # in the last block read: the rows before are converted
    path = write_h5(tmp_path / "soft.h5", data)
    monkeypatch.setattr(h5read, "READ_BLOCK_BYTES", 64)  # many blocks
    write_shared(path, tmp_path / "copy")
    got = open_shared(tmp_path / "copy")
    assert got.train.targets.dtype == np.float32 and got.valid.targets.dtype == np.uint8
    np.testing.assert_array_equal(got.train.targets, data.train.targets)
    assert sorted(p.name for p in (tmp_path / "copy").glob("train_targets*")) == [
        "train_targets.float32.npy"]  # the uint8 start was dropped


def test_loading_logs_progress_for_large_splits(
    tiny_h5: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(h5read, "PROGRESS_ROWS", 100)
    with caplog.at_level(logging.INFO, logger="basset.data.h5read"):
        load_data(tiny_h5)
    assert "loading tiny.h5: train: 120/120 sequences" in caplog.text
    assert "valid" not in caplog.text  # 50 rows: below the threshold


def test_the_folder_goes_when_its_block_ends(tiny_h5: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared, "SHM", tmp_path / "shm")
    monkeypatch.setattr(shared.tempfile, "gettempdir", lambda: str(tmp_path))
    with shared_data(tiny_h5, "my study") as folder:
        assert folder.parent == tmp_path and folder.name == f"basset-data-my_study-{os.getpid()}"
        assert open_shared(folder).train.seqs.shape == (120, 60)
    assert not folder.exists()
    with pytest.raises(RuntimeError), shared_data(tiny_h5, "s") as folder:
        raise RuntimeError("a crash of the run")
    assert not folder.exists()


def test_a_later_run_removes_the_folders_of_dead_processes(tmp_path: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = tmp_path / f"basset-data-s-{int(ended.stdout)}"
    live = tmp_path / f"basset-data-s-{os.getpid()}"
    other = tmp_path / "basset-data-notapid"
    for folder in (dead, live, other):
        folder.mkdir()
    assert remove_stale(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and other.exists()

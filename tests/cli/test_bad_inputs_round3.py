"""Round three of the bad-input catalogue (issue 25, the trainer's side): loads larger than
memory refused before allocating (item 8), seeds out of range and restarts with nothing left to
train (item 9), garbage checkpoints in our own words (item 10); each one stderr line, exit code 2,
no traceback, the workspace unchanged. And a reader that goes away ends the output quietly."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from basset.cli.common import cli_entry
from basset.params import JobParams
from basset.training.checkpoint import read_checkpoint
from basset.training.seam import TrainOptions
from basset.training.trainer import train
from hpo_testutil import tiny_data, write_h5
from reliability_testutil import run_in, snapshot

TRAIN, TEST, PRED = "basset-train", "basset-test", "basset-predict"
BIG = "needs about"  # ... of memory (the rows its datasets declare), more than the ... available
GARBAGE = "is not a loadable basset-hpo model (not a PyTorch checkpoint, or damaged)"
PRE = "seqs.fa acts.txt o.h5"

# name: (script, arguments run in the workspace, a piece of the one stderr line)
CASES: dict[str, tuple[str, str, str]] = {
    # item 8: declared shapes far beyond memory (a small compressed file)
    "train-declares-1e11-rows": (TRAIN, "-job small.txt -save n/m huge.h5", BIG),
    "train-declares-1e11-target-rows": (TRAIN, "-job small.txt -save n/m huge_out.h5", BIG),
    "test-declares-1e11-rows": (TEST, "m_best.pt huge.h5 out", BIG),
    "train-declares-1e11-target-labels": (TRAIN, "-job small.txt -save n/m huge_labels.h5", BIG),
    "train-declares-1e10-bp-sequences": (TRAIN, "-job small.txt -save n/m huge_len.h5", BIG),
    "test-declares-1e10-bp-sequences": (TEST, "m_best.pt huge_len.h5 out", BIG),
    "predict-hdf5-declares-1e11-rows": (PRED, "m_best.pt huge.h5 p.tsv", BIG),
    "motifs-declares-1e11-rows": ("basset-motifs", "m_best.pt huge.h5 mot", BIG),
    "repair-declares-1e11-rows": ("basset-preprocess", "--repair-scrambled huge.h5 r.h5",
                                  "not scrambled"),
    # item 9: seeds a generator cannot take
    "train-rand-negative": (TRAIN, "-rand -1 tiny.h5", "-rand/--rand: must be >= 0, not -1"),
    "train-rand-2**32": (TRAIN, "-rand 4294967296 tiny.h5", "must be at most 4294967295"),
    "train-rand-huge": (TRAIN, "--rand 99999999999999999 tiny.h5", "at most 4294967295"),
    "preprocess-seed-negative": ("basset-preprocess", f"-s -1 {PRE}", "-s/--seed: must be >= 0"),
    "preprocess-seed-2**32": ("basset-preprocess", f"--seed 4294967296 {PRE}", "at most"),
    "features-seed-negative": ("basset-features", "--seed -5 samples.txt g.fa -o f", "--seed"),
    "features-seed-huge": ("basset-features", "--seed 1e30 samples.txt g.fa -o f",
                           "not a whole number"),
    "demo-data-seed-2**32": ("basset-demo-data", "--seed 4294967296 d.h5", "at most"),
    "demo-data-seed-negative": ("basset-demo-data", "--seed -1 d.h5", "must be >= 0"),
    # item 9: a restart with nothing left to train (no folder may be made)
    "train-restart-max-epochs-below": (
        TRAIN, "-restart r_check.pt -max_epochs 1 -save new/r tiny.h5",
        "has already trained 2 epochs: -max_epochs 1 leaves none to train (give more than 2)"),
    "train-restart-max-epochs-equal": (
        TRAIN, "-restart r_check.pt -max_epochs 2 -save new/r tiny.h5", "has already trained 2"),
    "train-restart-already-stagnant": (
        TRAIN, "-restart stagnant_check.pt -stagnant_t 1 -max_epochs 9 -save new/s tiny.h5",
        "its run has already stopped, 2 epochs without a new best after epoch 1"),
    # item 10: garbage and unsafe checkpoints, in our words only
    "test-random-bytes-model": (TEST, "rand.pt tiny.h5 out", GARBAGE),
    "test-text-model": (TEST, "text.pt tiny.h5 out", GARBAGE),
    "test-empty-model": (TEST, "empty.pt tiny.h5 out", GARBAGE),
    "test-truncated-model": (TEST, "trunc.pt tiny.h5 out", GARBAGE),
    "predict-plain-pickle-model": (PRED, "plain.pt seqs.fa p.tsv", GARBAGE),
    "predict-plain-pickle-that-runs-code": (PRED, "evil.pt seqs.fa p.tsv", GARBAGE),
    "predict-torch-pickle-that-runs-code": (
        PRED, "torch_evil.pt seqs.fa p.tsv",
        "refused: it holds a Python object that loading would run as code (shutil.rmtree)"),
    "train-restart-torch-pickle-that-runs-code": (
        TRAIN, "-restart torch_evil.pt -save n/m tiny.h5", "(shutil.rmtree)"),
    "train-seed-random-bytes": (TRAIN, "-seed rand.pt -save n/m tiny.h5", GARBAGE),
    "motifs-truncated-model": ("basset-motifs", "trunc.pt tiny.h5 mot", GARBAGE),
    "sat-plain-pickle-model": ("basset-sat", "plain.pt seqs60.fa sat", GARBAGE),
}


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (shutil.rmtree, ("/definitely/not/here",))


def _huge(path: Path, rows: int, targets_rows: int) -> None:
    """Datasets that declare `rows` sequences (`targets_rows` targets) and hold none: chunked and
    compressed, the file stays a few kilobytes."""
    with h5py.File(path, "w") as h5:
        for split in ("train", "valid", "test"):
            h5.create_dataset(f"{split}_in", shape=(rows, 4, 1, 600), dtype=np.uint8,
                              chunks=(1, 4, 1, 600), compression="gzip")
            h5.create_dataset(f"{split}_out", shape=(targets_rows, 164), dtype=np.float32,
                              chunks=(1, 164), compression="gzip")


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("round3")
    data = tiny_data()
    write_h5(ws / "tiny.h5", data)
    net = JobParams(conv_filters=[4], conv_filter_sizes=[5], pool_width=[2], hidden_units=[8],
                    batch_size=32)
    train(net, data, options=TrainOptions(max_epochs=1, save_prefix=ws / "m", quiet=True))
    train(net, data, options=TrainOptions(max_epochs=2, save_prefix=ws / "r", quiet=True))
    stagnant = read_checkpoint(ws / "r_check.pt")
    stagnant.state.epoch, stagnant.state.best_epoch = 3, 1
    stagnant.save(ws / "stagnant_check.pt")
    (ws / "small.txt").write_text("batch_size 32\n")
    (ws / "n").mkdir()
    _huge(ws / "huge.h5", 10**11, 10**11)
    _huge(ws / "huge_out.h5", 100, 10**11)
    shutil.copy(ws / "tiny.h5", ws / "huge_labels.h5")
    with h5py.File(ws / "huge_labels.h5", "r+") as h5:
        del h5["target_labels"]
        h5.create_dataset("target_labels", shape=(10**11,), dtype="S8", chunks=(1024,),
                          compression="gzip")
    with h5py.File(ws / "huge_len.h5", "w") as h5:
        for split in ("train", "valid", "test"):
            h5.create_dataset(f"{split}_in", shape=(10, 4, 1, 10**10), dtype=np.uint8,
                              chunks=(1, 4, 1, 1 << 20), compression="gzip")
            h5[f"{split}_out"] = np.zeros((10, 3), np.float32)
    ids = [f"s{i}" for i in range(6)]
    (ws / "seqs.fa").write_text("".join(f">{i}\nACGTACGTAC\n" for i in ids))
    (ws / "seqs60.fa").write_text("".join(f">{i}\n{'ACGTT' * 12}\n" for i in ids))
    rows = "".join(f"{i}\t{n % 2}\t1\n" for n, i in enumerate(ids))
    (ws / "acts.txt").write_text("a\tb\n" + rows)
    (ws / "g.fa").write_text(">chr1\n" + "ACGT" * 250 + "\n")
    (ws / "a.bed").write_text("chr1\t100\t200\n")
    (ws / "samples.txt").write_text("s1 a.bed\n")
    (ws / "rand.pt").write_bytes(np.random.default_rng(0).bytes(5000))
    (ws / "text.pt").write_text("hello world\n")
    (ws / "empty.pt").write_bytes(b"")
    model = (ws / "m_best.pt").read_bytes()
    (ws / "trunc.pt").write_bytes(model[: len(model) // 2])
    (ws / "plain.pt").write_bytes(pickle.dumps({"format": "x"}, protocol=4))
    (ws / "evil.pt").write_bytes(pickle.dumps(_Evil()))
    torch.save(_Evil(), ws / "torch_evil.pt")
    return ws


@pytest.mark.parametrize("name", CASES)
def test_round_three_is_one_line_exit_2_and_changes_nothing(
    name: str, ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    script, words, says = CASES[name]
    before = snapshot(ws)
    code, err = run_in(ws, script, words.split(), capsys, monkeypatch)
    lines = err.splitlines()
    assert len(lines) == 1 and code == 2, f"{name}: exit {code}, stderr {err!r}"
    assert "Traceback" not in err and says in err, f"{name}: {err!r} does not say {says!r}"
    assert "weights_only" not in err
    assert snapshot(ws) == before, f"{name} changed the workspace"


def test_a_declared_3e7_rows_file_is_refused_with_its_size_and_the_memory_available(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _huge(tmp_path / "rows.h5", 3 * 10**7, 3 * 10**7)
    assert (tmp_path / "rows.h5").stat().st_size < 300_000
    monkeypatch.setattr("basset.data.h5read.available_memory", lambda: 8 << 30)
    code, err = run_in(ws, TRAIN, ["-save", "n/m", str(tmp_path / "rows.h5")], capsys,
                       monkeypatch)
    # train and valid: codes 3e7 x 600 bytes, targets 3e7 x 164 x (4 + 4) bytes
    need = 2 * 3 * 10**7 * (600 + 164 * 8)
    assert code == 2 and err == (
        f"error: {tmp_path / 'rows.h5'}: loading it needs about {need / 2**30:.3g} GiB of memory"
        " (the rows its datasets declare), more than the 8 GiB available\n")


def _gzipped_record(path: Path, bases: int, width: int | None) -> Path:
    seq = b"ACGT" * (bases // 4)
    lines = seq if width is None else b"\n".join(
        seq[i : i + width] for i in range(0, len(seq), width))
    path.write_bytes(gzip.compress(b">big\n" + lines + b"\n", compresslevel=1))
    return path


@pytest.mark.parametrize("width", [None, 60])
def test_a_fasta_record_beyond_memory_is_refused_while_it_streams(
    ws: Path, tmp_path: Path, width: int | None, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fasta = _gzipped_record(tmp_path / "big.fa.gz", 64 << 20, width)  # 64 MiB of bases
    assert fasta.stat().st_size < 1 << 20
    monkeypatch.setattr("basset.data.fasta.available_memory", lambda: 4 << 20)
    tracemalloc.start()
    try:
        code, err = run_in(ws, PRED, ["m_best.pt", str(fasta), str(tmp_path / "p.tsv")], capsys,
                           monkeypatch)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "need more than the 4 MiB of memory available" in err and "before big" in err
    assert peak < 16 << 20  # stopped near the bound, not after inflating 64 MiB
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.fa.gz"]


def test_many_records_beyond_memory_are_refused_too(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = b"".join(b">s%d\n%s\n" % (i, b"ACGT" * 2500) for i in range(1000))  # 10 MB
    (tmp_path / "many.fa").write_bytes(record)
    monkeypatch.setattr("basset.data.fasta.available_memory", lambda: 4 << 20)
    code, err = run_in(ws, "basset-preprocess", [str(tmp_path / "many.fa"), "acts.txt",
                                                 str(tmp_path / "o.h5")], capsys, monkeypatch)
    assert code == 2 and len(err.splitlines()) == 1 and "4 MiB of memory available" in err


def test_a_restart_with_epochs_left_still_trains(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copy(ws / "r_check.pt", tmp_path / "r_check.pt")
    argv = ["-q", "-job", "small.txt", "-restart", str(tmp_path / "r_check.pt"),
            "-max_epochs", "3", "-save", str(tmp_path / "r"), "tiny.h5"]
    code, err = run_in(ws, TRAIN, argv, capsys, monkeypatch)
    assert code == 0, err
    assert read_checkpoint(tmp_path / "r_check.pt").state.epoch == 3


# --- A reader that goes away: the output ends quietly, the work goes on.

def test_printing_after_the_reader_went_away_drops_the_rest_and_finishes_the_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class ClosedPipe:
        writes = 0

        def write(self, text: str) -> int:
            ClosedPipe.writes += 1
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    done: list[int] = []

    @cli_entry
    def main() -> int:
        for i in range(1000):
            print(f"line {i}")
        done.append(1)
        return 0

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main() == 0 and done == [1] and ClosedPipe.writes == 1


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def test_basset_test_into_head_is_quiet(ws: Path, tmp_path: Path) -> None:
    command = (f"set -o pipefail; {_script('basset-test')} {ws / 'm_best.pt'} {ws / 'tiny.h5'} "
               f"{tmp_path / 'out'} | head -c 10")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "mean AUROC"
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert (tmp_path / "out" / "aucs.txt").read_text().count("\n") == 3  # the work was done


def test_predictions_into_its_own_stdout_whose_reader_is_gone_end_quietly(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`basset-predict m.pt x.fa /dev/stdout` into a pipe whose reader has gone: neither a
    traceback nor a wait for a reader that will never come."""
    read, write = os.pipe()
    saved = os.dup(1)
    os.close(read)
    os.dup2(write, 1)
    os.close(write)
    try:
        code, err = run_in(ws, PRED, ["-q", "m_best.pt", "seqs.fa", "/dev/stdout"], capsys,
                           monkeypatch)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    assert code == 0 and err == ""


def test_memory_the_estimates_missed_is_still_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @cli_entry
    def main() -> int:
        raise MemoryError

    assert main() == 2
    assert capsys.readouterr().err == (
        "error: out of memory: the input needs more memory than this machine has available\n")


def test_the_memory_available_honours_ulimit_v() -> None:
    probe = "from basset.device import available_memory; print(available_memory())"
    done = subprocess.run(["bash", "-c", f"ulimit -v 2000000; {sys.executable} -c '{probe}'"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert 0 < int(done.stdout) < 2_000_000 * 1024

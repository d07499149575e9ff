"""No basset-* command writes over its own inputs or its other outputs (issue 25, item 1), and
none replaces a special file it is asked to write (item 2): refused in one stderr line with exit
code 2 before any work, every file of the workspace unchanged byte for byte (and the same
inode), whatever the spelling of the path (itself, `./x`, `d/../x`, a symlink, a hard link)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import threading
from pathlib import Path

import pytest

from basset.params import JobParams
from basset.training.seam import TrainOptions
from basset.training.trainer import train
from hpo_testutil import tiny_data, write_h5
from reliability_testutil import run_in, snapshot

PRE, FEAT, TRAIN = "basset-preprocess", "basset-features", "basset-train"
TEST, PRED, MOT, SAT = "basset-test", "basset-predict", "basset-motifs", "basset-sat"
JOB = "-job small.txt -max_epochs 1 "

# name: (script, arguments run in the workspace, a piece of the one stderr line)
CASES: dict[str, tuple[str, str, str]] = {
    "preprocess-out-is-the-fasta":
        (PRE, "seqs.fa acts.txt seqs.fa", "would overwrite the FASTA seqs.fa"),
    "preprocess-out-is-./fasta": (PRE, "seqs.fa acts.txt ./seqs.fa", "the FASTA"),
    "preprocess-out-is-dir/../fasta": (PRE, "seqs.fa acts.txt sub/../seqs.fa", "the FASTA"),
    "preprocess-out-is-the-table": (PRE, "seqs.fa acts.txt acts.txt", "the activity table"),
    "preprocess-out-is-a-link-to-the-fasta": (PRE, "seqs.fa acts.txt fa_link.h5", "the FASTA"),
    "preprocess-out-is-a-hard-link-of-the-table":
        (PRE, "seqs.fa acts.txt acts_hard.txt", "the activity table"),
    "preprocess-fasta-given-by-its-link": (PRE, "fa_link.h5 acts.txt seqs.fa", "the FASTA"),
    "repair-in-is-out":
        (PRE, "--repair-scrambled tiny.h5 tiny.h5", "would overwrite the scrambled file"),
    "repair-out-is-./in": (PRE, "--repair-scrambled tiny.h5 ./tiny.h5", "scrambled file"),
    "repair-out-is-a-hard-link": (PRE, "--repair-scrambled tiny.h5 tiny_hard.h5", "scrambled file"),
    "repair-out-is-a-link": (PRE, "--repair-scrambled tiny.h5 tiny_link.h5", "scrambled file"),
    "features-prefix-bed-is-a-peak-file":
        (FEAT, "samples.txt g.fa -o a", "would overwrite the peak file of s1"),
    "features-prefix-bed-is-a-peak-file-elsewhere":
        (FEAT, "samples.txt g.fa -o sub/../b", "the peak file of s2"),
    "features-prefix-fa-is-the-genome": (FEAT, "samples.txt g.fa -o g", "the genome"),
    "features-prefix-fa-is-the-genome-by-a-link":
        (FEAT, "samples.txt g_link.fa -o g", "the genome"),
    "features-prefix-act-is-the-table": (FEAT, "t_act.txt g.fa -o t", "the sample table"),
    "features-prefix-bed-is-the-sizes-file":
        (FEAT, "samples.txt g.fa -c sizes.bed -o sizes", "the chromosome sizes file"),
    "features-prefix-h5-is-a-hard-linked-peak-file":
        (FEAT, "samples.txt g.fa -o c", "the peak file of s1"),
    "train-save-check-is-the-data":
        (TRAIN, JOB + "-save run run_check.pt", "would overwrite the data run_check.pt"),
    "train-save-best-is-the-seed":
        (TRAIN, JOB + "-save m -seed m_best.pt tiny.h5", "would overwrite -seed m_best.pt"),
    "train-save-check-is-the-seed":
        (TRAIN, "-max_epochs 1 -save m -seed ./m_check.pt tiny.h5", "-seed"),
    "train-save-metrics-is-the-job":
        (TRAIN, "-job x_metrics.tsv -save x tiny.h5", "would overwrite -job"),
    "train-result-is-the-data":
        (TRAIN, JOB + "-save n/m -result tiny.h5 tiny.h5", "-result tiny.h5 would overwrite"),
    "train-result-is-the-job":
        (TRAIN, JOB + "-save n/m -result small.txt tiny.h5", "would overwrite -job"),
    "train-result-is-the-restart":
        (TRAIN, JOB + "-save n/m -restart m_check.pt -result m_check.pt tiny.h5",
         "would overwrite -restart"),
    "train-result-is-the-best-checkpoint":
        (TRAIN, JOB + "-save n/m -result n/m_best.pt tiny.h5", "are the same file"),
    "train-restart-is-the-metrics":
        (TRAIN, JOB + "-save m -restart m_metrics.tsv tiny.h5", "would overwrite -restart"),
    "train-data-is-a-link-to-the-best":
        (TRAIN, JOB + "-save k h5_link.h5", "would overwrite the data"),
    "test-out-folder-holds-the-model-as-aucs":
        (TEST, "out/aucs.txt tiny.h5 out", "would overwrite the model"),
    "test-out-folder-holds-the-data-as-r2": (TEST, "m_best.pt out/r2.txt ./out", "the input"),
    "predict-out-is-the-model":
        (PRED, "m_best.pt seqs.fa m_best.pt", "would overwrite the model m_best.pt"),
    "predict-out-is-the-fasta": (PRED, "m_best.pt seqs.fa ./seqs.fa", "the input"),
    "predict-out-is-a-link-to-the-fasta": (PRED, "m_best.pt seqs.fa fa_link.h5", "the input"),
    "predict-out-is-a-hard-link-of-the-model":
        (PRED, "m_best.pt seqs.fa model_hard.pt", "the model"),
    "motifs-out-folder-holds-the-model-as-table": (MOT, "out/table.tsv tiny.h5 out", "the model"),
    "motifs-out-folder-holds-the-data-as-logos": (MOT, "m_best.pt out/logos.html out", "the input"),
    "sat-out-folder-holds-the-fasta-as-html": (SAT, "m_best.pt out/sat.html out", "the input"),
    "sat-out-folder-holds-the-model-as-a-matrix":
        (SAT, "out/sat_s0.npy seqs60.fa out", "the model"),
}


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("own_files")
    data = tiny_data()
    write_h5(ws / "tiny.h5", data)
    train(JobParams(conv_filters=[4], conv_filter_sizes=[5], pool_width=[2], hidden_units=[8],
                    batch_size=32), data, options=TrainOptions(max_epochs=1, save_prefix=ws / "m",
                                                                quiet=True))
    (ws / "small.txt").write_text("batch_size 32\n")
    (ws / "x_metrics.tsv").write_text("batch_size 32\n")
    ids = [f"s{i}" for i in range(6)]
    (ws / "seqs.fa").write_text("".join(f">{i}\nACGTACGTAC\n" for i in ids))
    (ws / "seqs60.fa").write_text("".join(f">{i}\n{'ACGTT' * 12}\n" for i in ids))
    rows = "".join(f"{i}\t{n % 2}\t1\n" for n, i in enumerate(ids))
    (ws / "acts.txt").write_text("a\tb\n" + rows)
    (ws / "g.fa").write_text(">chr1\n" + "ACGT" * 250 + "\n")
    (ws / "a.bed").write_text("chr1\t100\t200\n")
    (ws / "sub").mkdir()
    (ws / "n").mkdir()
    (ws / "b.bed").write_text("chr1\t300\t400\n")
    (ws / "samples.txt").write_text("s1 a.bed\ns2 sub/../b.bed\n")
    (ws / "t_act.txt").write_text("s1 a.bed\n")
    (ws / "sizes.bed").write_text("chr1\t1000\n")
    os.link(ws / "a.bed", ws / "c.h5")
    shutil.copy(ws / "tiny.h5", ws / "run_check.pt")
    (ws / "out").mkdir()
    shutil.copy(ws / "m_best.pt", ws / "out" / "aucs.txt")
    shutil.copy(ws / "m_best.pt", ws / "out" / "table.tsv")
    shutil.copy(ws / "m_best.pt", ws / "out" / "sat_s0.npy")
    shutil.copy(ws / "tiny.h5", ws / "out" / "r2.txt")
    shutil.copy(ws / "tiny.h5", ws / "out" / "logos.html")
    shutil.copy(ws / "seqs60.fa", ws / "out" / "sat.html")
    shutil.copy(ws / "tiny.h5", ws / "k_best.pt")
    for name, target in (("fa_link.h5", "seqs.fa"), ("tiny_link.h5", "tiny.h5"),
                         ("g_link.fa", "g.fa"), ("h5_link.h5", "k_best.pt")):
        (ws / name).symlink_to(target)
    os.link(ws / "acts.txt", ws / "acts_hard.txt")
    os.link(ws / "tiny.h5", ws / "tiny_hard.h5")
    os.link(ws / "m_best.pt", ws / "model_hard.pt")
    return ws


@pytest.mark.parametrize("name", CASES)
def test_an_output_over_an_input_is_refused_before_any_work(
    name: str, ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    script, words, says = CASES[name]
    args = words.split()
    before = snapshot(ws)
    code, err = run_in(ws, script, args, capsys, monkeypatch)
    lines = err.splitlines()
    assert len(lines) == 1 and code == 2, f"{name}: exit {code}, stderr {err!r}"
    assert "Traceback" not in err and says in err, f"{name}: {err!r} does not say {says!r}"
    assert snapshot(ws) == before, f"{name} changed the workspace"


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making device nodes needs root")


def _node(folder: Path, name: str, minor: int) -> Path:
    """A character device like /dev/null (1, 3) or /dev/full (1, 7) under `folder`."""
    folder.mkdir(exist_ok=True)
    os.mknod(folder / name, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    return folder / name


@needs_root
def test_predictions_into_a_character_device_leave_it_a_device(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    null, full = _node(tmp_path, "null", 3), _node(tmp_path, "full", 7)
    before = snapshot(tmp_path)
    code, err = run_in(ws, PRED, ["-q", "m_best.pt", "seqs.fa", str(null)], capsys, monkeypatch)
    assert code == 0 and err == ""
    code, err = run_in(ws, PRED, ["-q", "m_best.pt", "seqs.fa", str(full)], capsys, monkeypatch)
    assert code == 2 and err == f"error: cannot write {full}: No space left on device\n"
    code, err = run_in(ws, PRE, ["-q", "seqs.fa", "acts.txt", str(null)], capsys, monkeypatch)
    assert code == 0 and err == ""
    assert snapshot(tmp_path) == before  # the same two nodes, nothing beside them


def test_predictions_into_a_fifo_reach_its_reader_and_a_socket_is_refused(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fifo, sock = tmp_path / "pipe", tmp_path / "sock"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock))
        before = snapshot(tmp_path)
        code, _ = run_in(ws, PRED, ["-q", "m_best.pt", "seqs.fa", str(fifo)], capsys, monkeypatch)
        reader.join(timeout=30)
        assert code == 0 and received[0].startswith(b"id\tt0\tt1\tt2\ns0\t")
        assert len(received[0].splitlines()) == 7
        code, err = run_in(ws, PRED, ["m_best.pt", "seqs.fa", str(sock)], capsys, monkeypatch)
        assert code == 2
        assert err == f"error: cannot write {sock}: it is a socket, not a regular file\n"
        assert snapshot(tmp_path) == before


def test_an_output_through_a_symlink_writes_its_target_and_keeps_the_link(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "store").mkdir()
    link = tmp_path / "preds.tsv"
    link.symlink_to(tmp_path / "store" / "preds.tsv")  # not there yet: a dangling link
    for _ in range(2):  # created, then replaced (atomically, beside the target)
        code, _ = run_in(ws, PRED, ["-q", "m_best.pt", "seqs.fa", str(link)], capsys,
                         monkeypatch)
        assert code == 0 and link.is_symlink()
        assert (tmp_path / "store" / "preds.tsv").read_text().startswith("id\tt0\tt1\tt2\n")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["preds.tsv", "preds.tsv", "store"]

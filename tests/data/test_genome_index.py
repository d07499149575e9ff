"""A stale genome index (issue 25, item 3): a genome re-wrapped beside its old `.fai` whose mtime
is newer (after `cp -p`, `tar`, `rsync -t`) gave shifted and cut sequences with exit code 0.
The index is now checked against the file and rebuilt, with one warning; a refused genome
leaves no index of ours behind."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np
import pyfaidx  # type: ignore[import-untyped]
import pytest
from Bio import bgzf

from basset.cli.features import main as features_main
from basset.data.fai import index_problem
from basset.data.genome import Genome

CHROMS = {"chr1": 1_234, "chr2": 777, "chr3": 120, "chr4": 50}


def genome_text(width: int, seed: int = 0) -> tuple[bytes, dict[str, bytes]]:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGTacgt", np.uint8)
    seqs = {name: letters[rng.integers(0, 8, n)].tobytes() for name, n in CHROMS.items()}
    text = b"".join(
        b">%s assembled\n" % name.encode()
        + b"".join(seq[i : i + width] + b"\n" for i in range(0, len(seq), width))
        for name, seq in seqs.items()
    )
    return text, seqs


def write(path: Path, text: bytes) -> None:
    if path.suffix == ".gz":
        with bgzf.BgzfWriter(path, "wb") as handle:
            handle.write(text)
    else:
        path.write_bytes(text)


def make_stale(path: Path, text: bytes) -> None:
    """`path` rewritten as `text`, its old index left beside it with a newer mtime."""
    Genome(path).close()  # the index of the file as it was
    write(path, text)
    later = path.stat().st_mtime + 100
    for index in (Path(f"{path}.fai"), Path(f"{path}.gzi")):
        if index.exists():
            os.utime(index, (later, later))


@pytest.mark.parametrize("name", ["genome.fa", "genome.fa.gz"])
def test_a_rewrapped_genome_beside_its_old_newer_index_is_reindexed(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / name
    write(path, genome_text(60)[0])
    text, seqs = genome_text(50)  # the same sequences, 50-column lines
    make_stale(path, text)
    # The failure as it was: pyfaidx trusts the newer index and reads shifted sequences.
    old = pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=False, rebuild=True)
    assert old["chr2"][:100] != seqs["chr2"][:100].decode()
    old.close()
    with caplog.at_level(logging.WARNING):
        genome = Genome(path)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"its index {path}.fai does not match it" in warning and "rebuilding" in warning
    assert genome.lengths == CHROMS
    for chrom, seq in seqs.items():
        assert genome.chromosome(chrom).tobytes() == seq
    genome.close()
    gzi = Path(f"{path}.gzi") if name.endswith(".gz") else None
    assert index_problem(path, Path(f"{path}.fai"), gzi) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [name, f"{name}.fai", *([f"{name}.gzi"] if gzi else [])])


@pytest.mark.parametrize("change", ["another-genome", "wrapped-wider", "crlf", "record-added",
                                    "record-cut", "garbage-index"])
def test_every_index_that_disagrees_is_found_and_a_matching_one_trusted(
    tmp_path: Path, change: str
) -> None:
    path = tmp_path / "g.fa"
    text, _ = genome_text(60)
    path.write_bytes(text)
    Genome(path).close()
    fai = Path(f"{path}.fai")
    assert index_problem(path, fai) is None
    changed = {
        "another-genome": genome_text(60, seed=1)[0].replace(b"chr3", b"chrZ"),
        "wrapped-wider": genome_text(70)[0],
        "crlf": text.replace(b"\n", b"\r\n"),
        "record-added": text + b">chr9\nACGT\n",
        "record-cut": text[: text.index(b">chr4")],
        "garbage-index": text,
    }[change]
    path.write_bytes(changed)
    if change == "garbage-index":
        fai.write_text("chr1\tx\n")
    assert index_problem(path, fai) is not None


def _features_run(folder: Path, genome: Path) -> tuple[int, Path]:
    (folder / "a.bed").write_text("chr1\t300\t400\nchr2\t500\t560\nchr3\t20\t40\n")
    (folder / "samples.txt").write_text("a a.bed\n")
    code = features_main([str(folder / "samples.txt"), str(genome), "-s", "100", "-m", "50", "-o",
                          str(folder / "er"), "-v", "1", "-t", "1", "-q"])
    return code, folder / "er"


def test_features_fasta_and_hdf5_are_right_after_the_index_was_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale, fresh = tmp_path / "stale", tmp_path / "fresh"
    stale.mkdir()
    fresh.mkdir()
    write(stale / "g.fa", genome_text(60)[0])
    text, seqs = genome_text(50)
    make_stale(stale / "g.fa", text)
    write(fresh / "g.fa", text)  # no index: built from the file
    code, prefix = _features_run(stale, stale / "g.fa")
    err = capsys.readouterr().err
    assert code == 0 and len(err.splitlines()) == 1 and "does not match it" in err
    assert _features_run(fresh, fresh / "g.fa")[0] == 0
    records = Path(f"{prefix}.fa").read_bytes().split(b"\n")
    assert records[1] == seqs["chr1"][300:400] and records[5] == seqs["chr3"][:100]
    assert records[3] == seqs["chr2"][480:580]
    assert records == (fresh / "er.fa").read_bytes().split(b"\n")
    with h5py.File(f"{prefix}.h5") as made, h5py.File(fresh / "er.h5") as expected:
        assert sorted(made) == sorted(expected)
        for key in made:
            np.testing.assert_array_equal(made[key][()], expected[key][()])


@pytest.mark.parametrize("stale", [False, True])
def test_a_refused_genome_leaves_no_index_of_ours(
    tmp_path: Path, stale: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    genome = tmp_path / "g.fa"
    text, _ = genome_text(60)
    genome.write_bytes(text)
    if stale:
        make_stale(genome, text)
    old = Path(f"{genome}.fai").read_bytes() if stale else None
    genome.write_bytes(text.replace(b"\n", b"\nAC\n", 3))  # a record of uneven lines
    if stale:
        later = genome.stat().st_mtime + 100
        os.utime(f"{genome}.fai", (later, later))
    code, prefix = _features_run(tmp_path, genome)
    lines = capsys.readouterr().err.splitlines()
    assert code == 2 and "cannot index the genome FASTA" in lines[-1]
    assert len(lines) == 1 + stale  # the stale index's warning, then the error
    fai = Path(f"{genome}.fai")
    assert (fai.read_bytes() if fai.exists() else None) == old
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob("er*"))


def test_a_run_refused_after_indexing_removes_the_index_it_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    genome = tmp_path / "g.fa.gz"
    write(genome, genome_text(60)[0])
    (tmp_path / "a.bed").write_text("chr7\t300\t400\n")  # not in the genome
    (tmp_path / "samples.txt").write_text("a a.bed\n")
    assert features_main([str(tmp_path / "samples.txt"), str(genome), "-o",
                          str(tmp_path / "er")]) == 2
    assert "chromosome 'chr7' is not in the genome" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bed", "g.fa.gz", "samples.txt"]


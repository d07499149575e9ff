"""basset-features: Basset's merge on hand-made peaks, a tiny genome made here (plain and
bgzipped), the outputs basset-preprocess and basset-train read, and one-line refusals."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from Bio import bgzf

from basset.cli.features import main
from basset.cli.preprocess import main as preprocess_main
from basset.cli.train import train_main
from basset.data.genome import COMPLEMENT, Genome
from basset.data.merge import Intervals, merge_intervals
from basset.data.peak_scan import MAX_NAMES
from basset.data.peaks import read_peaks
from features_reference import reference_merge

CHROMS = {"chr1": 12_000, "chr2": 1_000, "chrX": 2_000, "chrY": 2_000, "chrM": 1_000,
          "chrUn_gl1": 1_000, "chr1_random": 1_000}


def merge(rows: list[tuple[str, str, int, int]], n_targets: int, lengths: dict[str, int],
          size: int = 600, overlap: int = 200) -> list[tuple[str, int, int, str, list[int]]]:
    """(chrom, strand, point, sample) rows -> (chrom, start, end, strand, samples) features."""
    names = list(lengths)
    intervals = Intervals(
        names,
        np.array([names.index(r[0]) for r in rows], np.int32),
        np.array([r[1] == "-" for r in rows]),
        np.array([r[2] for r in rows], np.int64),
        np.array([r[3] for r in rows], np.int32),
    )
    features = merge_intervals(intervals, np.array(list(lengths.values())), n_targets,
                               size=size, overlap=overlap)
    return [
        (names[c], int(s), int(s) + size, "-" if m else "+", np.flatnonzero(a).tolist())
        for c, s, m, a in zip(
            features.chrom, features.start, features.minus, features.active(), strict=True
        )
    ]


def test_merge_semantics_on_hand_made_peaks() -> None:
    rows = [
        ("chr1", "+", 1050, 0), ("chr1", "+", 1150, 1), ("chr1", "+", 1150, 2),  # weights 2 and 3
        ("chr1", "+", 3005, 1),                                                  # alone
        ("chr1", "+", 5000, 0), ("chr1", "+", 5100, 1), ("chr1", "+", 5350, 2),  # a chain
        ("chr1", "+", 7000, 0), ("chr1", "+", 7390, 1), ("chr1", "+", 7780, 2),  # tie: first pair
        ("chr1", "+", 9000, 0), ("chr1", "+", 9001, 1),                          # x.5 rounds up
        ("chr1", "-", 3005, 0),                                                  # other strand
        ("chr2", "+", 100, 0), ("chr2", "+", 950, 1),                            # both ends
    ]
    assert merge(rows, 3, {"chr1": 12_000, "chr2": 1_000}) == [
        ("chr1", 810, 1410, "+", [0, 1, 2]),   # (2*1050 + 3*1150) / 5 = 1110
        ("chr1", 2705, 3305, "+", [1]),
        ("chr1", 4870, 5470, "+", [0, 1, 2]),  # 5000+5100 -> 5050 (w 3), then with 5350 (w 2): 5170
        ("chr1", 6895, 7495, "+", [0, 1]),     # 7000+7390 -> 7195; 7780 is then 585 bp away
        ("chr1", 7480, 8080, "+", [2]),
        ("chr1", 8701, 9301, "+", [0, 1]),     # int(0.5 + 9000.5) = 9001
        ("chr1", 2705, 3305, "-", [0]),
        ("chr2", 0, 600, "+", [0]),            # shifted inside the start
        ("chr2", 400, 1000, "+", [1]),         # and the end; 400 bp apart: not merged (>= 600-200)
    ]
    # A chromosome shorter than the feature size keeps no feature; -m 0 merges any overlap (1 bp
    # here: (1000 + 1599) / 2 rounds up to 1300), not touching features.
    assert merge([("chr2", "+", 500, 0)], 1, {"chr2": 599}) == []
    assert merge(
        [("chr1", "+", 1000, 0), ("chr1", "+", 1599, 0)], 1, {"chr1": 5000}, overlap=0
    ) == [("chr1", 1000, 1600, "+", [0])]
    assert (
        len(merge([("chr1", "+", 1000, 0), ("chr1", "+", 1600, 0)], 1, {"chr1": 5000}, overlap=0))
        == 2
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_merge_equals_the_one_peak_at_a_time_greedy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = {"chr1": 40_000, "chr2": 9_000, "chr3": 500}
    sites = rng.integers(0, 40_000, 12)
    rows = []
    for _ in range(1500):
        chrom = str(rng.choice(list(lengths)))
        point = int(min(sites[rng.integers(12)] + rng.integers(-500, 500), lengths[chrom] - 1))
        rows.append(
            (chrom, "-" if rng.random() < 0.2 else "+", max(point, 0), int(rng.integers(70)))
        )
    for size, overlap in ((600, 200), (301, 50)):
        expected = reference_merge(rows, lengths, size, overlap)
        got = merge(rows, 70, lengths, size, overlap)
        assert sorted((c, st, s, e, a) for c, s, e, st, a in got) == sorted(expected)


def write_genome(path: Path, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGTacgtN", np.uint8)
    genome = {name: letters[rng.integers(0, 9, n)].tobytes() for name, n in CHROMS.items()}
    text = b"".join(
        b">%s some words\n" % name.encode()
        + b"".join(seq[i : i + 60] + b"\n" for i in range(0, len(seq), 60))
        for name, seq in genome.items()
    )
    if path.suffix == ".gz":
        with bgzf.BgzfWriter(path, "wb") as handle:
            handle.write(text)
    else:
        path.write_bytes(text)
    return genome


PEAKS = {
    "s0": "chr1\t1000\t1100\tp1\t0\t+\n"
          "chr1\t2900\t3110\tp2\t0\t-\n"
          "chrY\t500\t700\tp3\n"
          "chrUn_gl1\t300\t400\n",
    "s1": "track name=x\n#comment\nchr1\t1100\t1200\r\nchrX\t900\t1000\nchrM\t10\t20\n",
}


def write_samples(folder: Path, peaks: dict[str, str] | None = None) -> Path:
    table = folder / "samples.txt"
    lines = []
    for label, text in (peaks or PEAKS).items():
        bed = folder / f"{label}.bed.gz"
        bed.write_bytes(gzip.compress(text.encode()))
        lines.append(f"{label}\t{bed.name}")  # relative to the table's folder
    table.write_text("\n".join(lines) + "\n")
    return table


def outputs(prefix: Path) -> list[Path]:
    return sorted(prefix.parent.glob(prefix.name + "*"))


@pytest.mark.parametrize("genome_name", ["genome.fa", "genome.fa.gz"])
def test_peaks_to_features_table_fasta_and_hdf5(tmp_path: Path, genome_name: str) -> None:
    genome_path = tmp_path / genome_name
    genome = write_genome(genome_path)
    table = write_samples(tmp_path)
    prefix = tmp_path / "out" / "er"
    prefix.parent.mkdir()
    args = [str(table), str(genome_path), "-o", str(prefix), "-q", "-v", "1", "-t", "1"]
    sizes = tmp_path / "hg.genome"
    sizes.write_text("".join(f"{name}\t{n}\n" for name, n in CHROMS.items()))
    assert main([*args, "-y", "-c", str(sizes)]) == 0
    bed = (tmp_path / "out" / "er.bed").read_text().splitlines()
    assert bed == [
        "chr1\t800\t1400\t.\t1\t+\t0,1",
        "chr1\t2705\t3305\t.\t1\t-\t0",
        "chrX\t650\t1250\t.\t1\t+\t1",
        "chrM\t0\t600\t.\t1\t+\t1",
        "chrUn_gl1\t50\t650\t.\t1\t+\t0",
    ]
    ids = ["chr1:800-1400(+)", "chr1:2705-3305(-)", "chrX:650-1250(+)", "chrM:0-600(+)",
           "chrUn_gl1:50-650(+)"]
    act = (tmp_path / "out" / "er_act.txt").read_text().splitlines()
    assert act == ["\ts0\ts1", f"{ids[0]}\t1\t1", f"{ids[1]}\t1\t0", f"{ids[2]}\t0\t1",
                   f"{ids[3]}\t0\t1", f"{ids[4]}\t1\t0"]
    fasta = (tmp_path / "out" / "er.fa").read_bytes().split(b"\n")
    assert [line.decode()[1:] for line in fasta[0:-1:2]] == ids
    assert fasta[1] == genome["chr1"][800:1400]
    minus = np.frombuffer(genome["chr1"][2705:3305], np.uint8)
    assert fasta[3] == COMPLEMENT[minus[::-1]].tobytes()  # bedtools getfasta -s
    assert (genome_path.parent / (genome_name + ".fai")).exists()

    # The HDF5 is what basset-preprocess makes of the FASTA and the table with the same splits.
    again = tmp_path / "again.h5"
    assert preprocess_main([str(prefix) + ".fa", str(prefix) + "_act.txt", str(again),
                            "-v", "1", "-t", "1", "-q"]) == 0
    with h5py.File(str(prefix) + ".h5") as made, h5py.File(again) as expected:
        assert sorted(made) == sorted(expected)
        for name in made:
            np.testing.assert_array_equal(made[name][()], expected[name][()])

    # -i keeps chr<number> and chrX only; --no-h5 stops after the FASTA.
    assert main([*args, "-i", "--no-h5", "-o", str(tmp_path / "primary")]) == 0
    assert [
        line.split("\t")[0] for line in (tmp_path / "primary.bed").read_text().splitlines()
    ] == ["chr1", "chr1", "chrX"]
    assert not (tmp_path / "primary.h5").exists()


@pytest.mark.parametrize("genome_name", ["genome.fa", "genome.fa.gz"])
def test_windows_from_forked_processes_equal_one_process(tmp_path: Path, genome_name: str) -> None:
    # Large extractions share the chromosomes among processes writing into one shared buffer.
    genome_path = tmp_path / genome_name
    sequences = write_genome(genome_path)
    names = list(CHROMS)
    rng = np.random.default_rng(3)
    chrom = rng.integers(0, len(names), 500)
    start = rng.integers(0, np.array([CHROMS[n] for n in names])[chrom] - 50)
    minus = rng.random(500) < 0.5
    genome = Genome(genome_path)
    one = genome.windows(names, chrom, start, minus, 50, workers=1)
    forked = genome.windows(names, chrom, start, minus, 50, workers=2)
    genome.close()
    np.testing.assert_array_equal(forked, one)
    row = int(np.flatnonzero(minus)[0])
    window = np.frombuffer(sequences[names[chrom[row]]][start[row]:start[row] + 50], np.uint8)
    assert one[row].tobytes() == COMPLEMENT[window[::-1]].tobytes()


def test_narrowpeak_summit_and_strand(tmp_path: Path) -> None:
    bed = tmp_path / "x.narrowPeak"
    bed.write_text("chr1\t2000\t2400\tp\t0\t.\t5\t3\t2\t50\n"
                   "chr1\t100\t200\tq\t0\t-\t5\t3\t2\t-1\n")
    plain, with_summit = read_peaks(bed), read_peaks(bed, summit=True)
    assert plain.point.tolist() == [2200, 150] and with_summit.point.tolist() == [2050, 150]
    assert plain.minus.tolist() == [False, True] and plain.chroms == ["chr1"]


def test_a_file_naming_more_chromosomes_than_the_compiled_scan_holds(tmp_path: Path) -> None:
    bed = tmp_path / "contigs.bed"
    n = MAX_NAMES + 1  # parsed by the numpy parser instead
    bed.write_text("".join(f"c{i}\t{i}\t{i + 2}\n" for i in range(n)))
    peaks = read_peaks(bed)
    assert len(peaks.chroms) == n and len(peaks.point) == n
    point = dict(zip([peaks.chroms[c] for c in peaks.chrom], peaks.point.tolist(), strict=True))
    assert point["c7"] == 8 and point[f"c{n - 1}"] == n


def test_peaks_to_hdf5_to_one_training_epoch(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    genome_path = tmp_path / "genome.fa"
    write_genome(genome_path)
    peaks = {}
    for s in range(3):
        points = rng.integers(150, 11_800, 120)
        peaks[f"s{s}"] = "".join(f"chr1\t{p - 10}\t{p + 10}\n" for p in points)
    table = write_samples(tmp_path, peaks)
    prefix = tmp_path / "tiny"
    assert (
        main([str(table), str(genome_path), "-o", str(prefix), "-s", "100", "-m", "50", "-q"]) == 0
    )
    job = tmp_path / "job.txt"
    job.write_text(
        "conv_filters 4\nconv_filter_sizes 5\npool_width 2\nhidden_units 8\nbatch_size 32\n"
    )
    assert train_main(["-q", "-job", str(job), "-max_epochs", "1", "-save", str(tmp_path / "m"),
                       f"{prefix}.h5"]) == 0
    assert (tmp_path / "m_best.pt").exists()


def _bad(folder: Path, case: str) -> tuple[list[str], str]:
    genome = folder / "genome.fa"
    write_genome(genome)
    table = write_samples(folder)
    samples = folder / "samples.txt"

    def peaks(text: str) -> None:
        write_samples(folder, {**PEAKS, "s1": text})

    if case == "missing-bed":
        samples.write_text("s0 s0.bed.gz\ns1 nowhere.bed\n")
    elif case == "two-columns":
        peaks("chr1\t100\n")
    elif case == "non-numeric":
        peaks("chr1\t100\t200\nchr1\tabc\t300\n")
    elif case == "negative":
        peaks("chr1\t-5\t300\n")
    elif case == "start-after-end":
        peaks("chr1\t500\t300\n")
    elif case == "unknown-chromosome":
        peaks("chr7\t100\t200\n")
    elif case == "beyond-the-end":
        peaks("chr2\t5000\t5200\n")
    elif case == "empty-table":
        samples.write_text("\n")
    elif case == "duplicate-labels":
        samples.write_text("s0 s0.bed.gz\ns0 s1.bed.gz\n")
    elif case == "table-fields":
        samples.write_text("s0 s0.bed.gz extra\n")
    elif case == "index-unwritable":
        (folder / "genome.fa.fai").mkdir()  # root writes anywhere; a folder in the way fails
    elif case == "bom-genome":
        genome.write_bytes(b"\xef\xbb\xbf" + genome.read_bytes())
    elif case == "plain-gzip-genome":
        gz = folder / "genome.fa.gz"
        gz.write_bytes(gzip.compress(genome.read_bytes()))
        genome = gz
    elif case == "sizes-disagree":
        sizes = folder / "hg.genome"
        sizes.write_text("chr1\t11000\nchr2\t1000\n")
        return [str(table), str(genome), "-c", str(sizes)], "chr1 is 11000 bp but 12000 bp in"
    elif case == "summit-without-column":
        return [str(table), str(genome), "--summit"], "--summit needs narrowPeak's 10th column"
    messages = {
        "missing-bed": "peak file of s1 not found",
        "two-columns": "s1.bed.gz: line 1: fewer than three columns",
        "non-numeric": "s1.bed.gz: line 2: start 'abc' is not a whole number",
        "negative": "s1.bed.gz: line 1: start '-5' is negative",
        "start-after-end": "line 1: start 500 is after end 300",
        "unknown-chromosome": "chromosome 'chr7' is not in the genome",
        "beyond-the-end": "beyond the end of chr2 (1000 bp)",
        "empty-table": "the sample table is empty",
        "duplicate-labels": "the label 's0' is used twice",
        "table-fields": "line 1: expected 'label bed_path', got 3 fields",
        "index-unwritable": "cannot write or read the FASTA index",
        "bom-genome": "byte-order mark",
        "plain-gzip-genome": "gzip, not bgzip",
    }
    return [str(table), str(genome)], messages[case]


@pytest.mark.parametrize(
    "case",
    [
        "missing-bed",
        "two-columns",
        "non-numeric",
        "negative",
        "start-after-end",
        "unknown-chromosome",
        "beyond-the-end",
        "empty-table",
        "duplicate-labels",
        "table-fields",
        "index-unwritable",
        "bom-genome",
        "plain-gzip-genome",
        "summit-without-column",
        "sizes-disagree",
    ],
)
def test_bad_inputs_are_one_line_exit_2_and_write_nothing(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args, message = _bad(tmp_path, case)
    prefix = tmp_path / "out" / "er"
    prefix.parent.mkdir()
    assert main([*args, "-o", str(prefix)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert outputs(prefix) == []
    if case not in ("unknown-chromosome", "beyond-the-end", "index-unwritable", "sizes-disagree"):
        assert not (tmp_path / "genome.fa.fai").exists()  # refused before the genome is indexed


def test_output_folder_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    genome = tmp_path / "genome.fa"
    write_genome(genome)
    assert main([str(write_samples(tmp_path)), str(genome), "-o", str(tmp_path / "no" / "er")]) == 2
    assert "output folder does not exist" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "no", ignore_errors=True)

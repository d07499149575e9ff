from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from basset.cli.preprocess import main
from basset.data.fasta import read_fasta
from basset.data.h5read import load_data
from basset.data.onehot import encode_codes, onehot_from_codes

BASES = np.array(list("ACGT"))


def write_inputs(folder: Path, n: int = 20, length: int = 12, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    fasta, table = folder / "in.fa", folder / "act.txt"
    seqs = ["".join(rng.choice(BASES, length)) for _ in range(n)]
    fasta.write_text("".join(f">s{i} desc\n{s}\n" for i, s in enumerate(seqs)))
    rows = [f"s{i}\t{i % 2}\t{(i // 2) % 2}\t{i % 3 == 0:d}" for i in range(n)]
    table.write_text("\tA\tB\tC\n" + "\n".join(rows) + "\n")
    return fasta, table


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse errors
        return int(exit_.code or 0)


def test_real_data_splits_match_the_fasta(oct4_mafk: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    fasta, table = oct4_mafk / "oct4_mafk.fa", oct4_mafk / "oct4_mafk_act.txt"
    assert run([str(fasta), str(table), str(out), "-v", "700", "-t", "700", "-q"]) == 0
    with h5py.File(out) as h5:
        assert h5["train_in"].shape == (6397, 4, 1, 200)
        assert h5["train_in"].dtype == np.float16 and h5["train_out"].dtype == np.int8
        assert [label.decode() for label in h5["target_labels"][()]] == ["Oct4", "MafK"]
        raw = {name: h5[f"{name}_in"][()] for name in ("train", "valid", "test")}
        headers = {name: [h.decode() for h in h5[f"{name}_headers"][()]] for name in raw}
    seqs = dict(read_fasta(fasta))
    activity = {line.split()[0]: line.split()[1:] for line in table.read_text().splitlines()[1:]}
    data = load_data(out)
    for name, onehot in raw.items():
        expected = onehot_from_codes(encode_codes([seqs[h] for h in headers[name]]))
        np.testing.assert_array_equal(onehot[:, :, 0, :], expected)
        split = getattr(data, name)
        assert split.headers == headers[name]
        wanted = np.array([activity[h] for h in headers[name]], dtype=np.float32)
        np.testing.assert_array_equal(split.targets, wanted)
    assert len(data.valid) == len(data.test) == 700
    assert set(headers["train"]) | set(headers["valid"]) | set(headers["test"]) == set(seqs)


def test_fractions_seed_dtype_and_targets(tmp_path: Path) -> None:
    fasta, table = write_inputs(tmp_path)
    outs = {}
    for name, extra in {"a": [], "b": [], "c": ["-s", "2"], "u": ["--dtype", "uint8"]}.items():
        outs[name] = tmp_path / f"{name}.h5"
        assert (
            run([str(fasta), str(table), str(outs[name]), "-v", "0.2", "-t", "0.25", "-q", *extra])
            == 0
        )
    with h5py.File(outs["a"]) as a, h5py.File(outs["b"]) as b, h5py.File(outs["c"]) as c:
        assert [a[f"{s}_in"].shape[0] for s in ("train", "valid", "test")] == [11, 4, 5]
        assert a["test_headers"][()].tolist() == b["test_headers"][()].tolist()
        assert a["test_headers"][()].tolist() != c["test_headers"][()].tolist()
        assert a["train_out"].dtype == np.int8
    float16, uint8 = load_data(outs["a"]), load_data(outs["u"])
    np.testing.assert_array_equal(float16.train.seqs, uint8.train.seqs)
    with h5py.File(outs["u"]) as u:
        assert u["train_in"].dtype == np.uint8


def test_extend_and_float_targets(tmp_path: Path) -> None:
    fasta, table = tmp_path / "in.fa", tmp_path / "act.txt"
    fasta.write_text(">a\nAACCGGTT\n>b\nCG\n>c\nACGTA\n")
    table.write_text("id x\na 0.5\nb 1\nc 2\n")  # the first header cell names the id column
    out = tmp_path / "out.h5"
    assert run([str(fasta), str(table), str(out), "-e", "4", "-v", "1", "-t", "0", "-q"]) == 0
    data = load_data(out)
    assert data.target_labels == ["x"] and data.seq_len == 4
    with h5py.File(out) as h5:
        assert h5["train_out"].dtype == np.float32
    every = {
        h: s
        for split in (data.train, data.valid)
        for h, s in zip(split.headers, split.seqs, strict=True)
    }
    assert every["a"].tolist() == [1, 1, 2, 2] and every["b"].tolist() == [4, 1, 2, 4]


FASTA_OK = ">s1\nACGT\n>s2\nACGA\n>s3\nTTTT\n>s4\nGGGG\n"
TABLE_OK = "\tA\tB\ns1\t0\t1\ns2\t1\t0\ns3\t1\t1\ns4\t0\t0\n"

BAD_INPUTS = {
    "fasta id not in table": (
        FASTA_OK + ">s5\nACGT\n",
        TABLE_OK,
        [],
        "1 FASTA ids are not in the activity table (s5)",
    ),
    "table id not in fasta": (
        FASTA_OK,
        TABLE_OK + "s5\t0\t0\ns6\t1\t1\n",
        [],
        "2 activity-table ids are not in the FASTA (s5, s6)",
    ),
    "duplicate fasta ids": (FASTA_OK + ">s1\nACGT\n", TABLE_OK, [], "1 duplicate ids (s1)"),
    "duplicate table ids": (FASTA_OK, TABLE_OK + "s2\t0\t0\n", [], "1 duplicate ids (s2)"),
    "mixed lengths": (
        FASTA_OK + ">s5\nACGTAC\n",
        TABLE_OK + "s5\t0\t0\n",
        [],
        "different lengths (4 bp (4 seqs), 6 bp (1 seqs))",
    ),
    "empty fasta": ("", TABLE_OK, [], "no sequences in the FASTA"),
    "headers without bases": (">s1\n>s2\n>s3\n>s4\n", TABLE_OK, [], "the sequences are empty"),
    "empty table": (FASTA_OK, "", [], "the activity table is empty"),
    "header only": (FASTA_OK, "\tA\tB\n", [], "has a header but no rows"),
    "non-numeric value": (
        FASTA_OK,
        TABLE_OK.replace("s2\t1\t0", "s2\t1\tyes"),
        [],
        "line 3: value 'yes' is not a number",
    ),
    "nan value": (
        FASTA_OK,
        TABLE_OK.replace("s3\t1\t1", "s3\tnan\t1"),
        [],
        "line 4: value is not a finite number",
    ),
    "wrong column count": (
        FASTA_OK,
        TABLE_OK.replace("s4\t0\t0", "s4\t0"),
        [],
        "line 5: 2 columns, expected 3",
    ),
    "header width": (
        FASTA_OK,
        "\tA\tB\tC\n" + TABLE_OK.split("\n", 1)[1],
        [],
        "the header names 3 targets but rows have 2 values",
    ),
    "no training data": (
        FASTA_OK,
        TABLE_OK,
        ["-v", "2", "-t", "2"],
        "split sizes leave no training data: 4 sequences, valid 2 + test 2",
    ),
    "not fasta": ("ACGT\n" + FASTA_OK, TABLE_OK, [], "line 1: not FASTA"),
    "bad split size": (
        FASTA_OK,
        TABLE_OK,
        ["-v", "1.5"],
        "give a fraction in [0, 1) or a whole count",
    ),
    "bad extend": (FASTA_OK, TABLE_OK, ["-e", "0"], "-e/--extend must be a positive length"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fasta_text, table_text, extra, message = BAD_INPUTS[case]
    fasta, table, out = tmp_path / "in.fa", tmp_path / "act.txt", tmp_path / "out.h5"
    fasta.write_text(fasta_text)
    table.write_text(table_text)
    assert run([str(fasta), str(table), str(out), "-v", "1", "-t", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["act.txt", "in.fa"]


@pytest.mark.parametrize("missing", ["fasta", "table", "folder"])
def test_missing_paths(missing: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fasta, table = tmp_path / "in.fa", tmp_path / "act.txt"
    fasta.write_text(FASTA_OK)
    table.write_text(TABLE_OK)
    out = tmp_path / ("nowhere/out.h5" if missing == "folder" else "out.h5")
    args = {"fasta": fasta, "table": table}
    args[missing] = tmp_path / "absent.txt"
    assert run([str(args["fasta"]), str(args["table"]), str(out), "-v", "1", "-t", "1"]) == 2
    expected = {
        "fasta": "FASTA file not found",
        "table": "activity table not found",
        "folder": "output folder does not exist",
    }
    assert expected[missing] in capsys.readouterr().err
    assert not out.exists()


def test_failure_leaves_an_existing_output_untouched(tmp_path: Path) -> None:
    fasta, table, out = tmp_path / "in.fa", tmp_path / "act.txt", tmp_path / "out.h5"
    fasta.write_text(FASTA_OK + ">s5\nACGTAC\n")
    table.write_text(TABLE_OK + "s5\t0\t0\n")
    out.write_bytes(b"previous")
    assert run([str(fasta), str(table), str(out)]) == 2
    assert out.read_bytes() == b"previous"


def test_console_script_reports_without_traceback(tmp_path: Path) -> None:
    fasta, table = tmp_path / "in.fa", tmp_path / "act.txt"
    fasta.write_text(FASTA_OK)
    table.write_text(TABLE_OK.replace("s2\t1\t0", "s2\t1\tyes"))
    script = Path(sys.executable).with_name("basset-preprocess")
    if not script.exists():
        pytest.skip("the basset-preprocess console script is not installed beside this python")
    result = subprocess.run(
        [str(script), str(fasta), str(table), str(tmp_path / "o.h5")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_gzipped_fasta_and_byte_order_marks_give_the_same_file(tmp_path: Path) -> None:
    fasta, table = write_inputs(tmp_path)
    plain = tmp_path / "plain.h5"
    assert run([str(fasta), str(table), str(plain), "-q"]) == 0
    zipped = tmp_path / "in.fa.gz"
    with gzip.open(zipped, "wb") as handle:
        handle.write(b"\xef\xbb\xbf" + fasta.read_bytes())
    bom_table = tmp_path / "bom_act.txt"
    bom_table.write_bytes(b"\xef\xbb\xbf" + table.read_bytes())
    out = tmp_path / "gz.h5"
    assert run([str(zipped), str(bom_table), str(out), "-q"]) == 0
    with h5py.File(plain) as a, h5py.File(out) as b:
        assert sorted(a) == sorted(b)
        for name in a:
            np.testing.assert_array_equal(a[name][()], b[name][()])


def test_utf16_table_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fasta, table = write_inputs(tmp_path)
    utf16 = tmp_path / "act16.txt"
    utf16.write_text(table.read_text(), encoding="utf-16")
    out = tmp_path / "out.h5"
    assert run([str(fasta), str(utf16), str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "activity table is UTF-16 text" in err[0]
    assert not out.exists()

"""basset-sat: saturation mutagenesis of a hand-made network with a planted motif."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from basset.cli.sat import main
from basset.data.onehot import BASE_BYTES
from basset.errors import DataError
from basset.interpret.sat import saturation_mutagenesis, select_targets
from interpret_models import encode, planted_model, run_cli, save_model

MOTIF = "TGCTGACTCAGCA"
SEQ_LEN = 60
AT = 20  # motif start


def sequence(seed: int = 0) -> np.ndarray:
    codes = np.random.default_rng(seed).integers(0, 4, size=SEQ_LEN, dtype=np.uint8)
    codes[AT : AT + len(MOTIF)] = encode(MOTIF)
    return codes


def test_motif_bases_carry_the_effects(device: str) -> None:
    model = planted_model(MOTIF, SEQ_LEN).to(device)
    codes = sequence()
    sat = saturation_mutagenesis(model, codes, [0], batch_size=50)
    assert sat.delta.shape == (1, 4, SEQ_LEN) and sat.start == 0
    delta = sat.delta[0]
    # The prediction is sigmoid(best site score - 6); a perfect site scores 13 x 0.75 = 9.75.
    assert sat.reference[0] == pytest.approx(1 / (1 + np.exp(-(9.75 - 6))), abs=1e-5)
    one_mismatch = 1 / (1 + np.exp(-(8.75 - 6))) - sat.reference[0]
    motif = slice(AT, AT + len(MOTIF))
    is_ref = np.zeros((4, SEQ_LEN), dtype=bool)
    is_ref[codes, np.arange(SEQ_LEN)] = True
    assert np.all(delta[is_ref] == 0)
    inside = delta[:, motif][~is_ref[:, motif]]
    assert inside.shape == (3 * len(MOTIF),)
    assert np.allclose(inside, one_mismatch, atol=1e-5)  # every motif mutation loses one match
    outside = np.delete(delta, np.arange(AT, AT + len(MOTIF)), axis=1)
    assert np.abs(outside).max() < 1e-6
    per_position = np.abs(delta).max(axis=0)
    assert set(np.argsort(per_position)[-len(MOTIF):]) == set(range(AT, AT + len(MOTIF)))


def test_window_and_n_bases() -> None:
    model = planted_model(MOTIF, SEQ_LEN)
    codes = sequence(1)
    codes[AT + 3] = 4  # an N inside the motif: its site scores 12 x 0.75 - 3 x 0.25 + 0 = 8.75
    sat = saturation_mutagenesis(model, codes, [0], start=15, stop=40)
    assert sat.delta.shape == (1, 4, 25) and sat.start == 15
    column = sat.delta[0, :, AT + 3 - 15]
    wanted = encode(MOTIF)[3]
    assert column[wanted] > 0.01  # restoring the motif's base raises the prediction
    assert np.all(np.delete(column, wanted) < -0.01)  # the three others lose 0.25 more


def test_select_targets() -> None:
    labels = ["Oct4", "MafK", "CTCF"]
    assert select_targets(None, labels) == [0, 1, 2]
    assert select_targets("MafK,0", labels) == [1, 0]
    with pytest.raises(DataError, match="'7' is neither a label nor an index below 3"):
        select_targets("7", labels)


def _fasta(path, records: dict[str, np.ndarray]):
    path.write_text(
        "".join(
            f">{k} some description\n{BASE_BYTES[v].tobytes().decode()}\n"
            for k, v in records.items()
        )
    )
    return path


def test_cli_outputs(tmp_path, capsys) -> None:
    model = save_model(planted_model(MOTIF, SEQ_LEN), tmp_path / "m.pt", ["MafK"])
    fasta = _fasta(tmp_path / "s.fa", {"chr1:100-160": sequence(2), "plain": sequence(3)})
    out = tmp_path / "out"
    assert (
        main([str(model), str(fasta), str(out), "--center", "40", "--targets", "MafK", "-q"]) == 0
    )
    assert capsys.readouterr().err == ""
    saved = np.load(out / "sat_chr1_100-160.npy")
    assert saved.shape == (1, 4, 40)
    tsv = (out / "sat_plain.tsv").read_text().splitlines()
    assert tsv[0].split("\t")[:3] == ["target", "base", "11"] and len(tsv) == 5
    assert np.allclose(
        np.array([r.split("\t")[2:] for r in tsv[1:]], dtype=float),
        np.load(out / "sat_plain.npy")[0],
        atol=1e-4,
    )
    table = [r.split("\t") for r in (out / "table.tsv").read_text().splitlines()]
    assert table[1][:2] == ["chr1:100-160", "MafK"]
    assert AT < int(table[1][4]) <= AT + len(MOTIF)  # the largest loss is a motif base (1-based)
    assert (out / "sat.html").read_text().count("<svg xmlns") == 2

    zipped = tmp_path / "s.fa.gz"
    zipped.write_bytes(gzip.compress(fasta.read_bytes()))
    assert (
        main(
            [
                str(model),
                str(zipped),
                str(tmp_path / "gz"),
                "--center",
                "40",
                "--targets",
                "MafK",
                "-q",
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(
        np.load(tmp_path / "gz" / "sat_plain.npy"), np.load(out / "sat_plain.npy")
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no_fasta", "FASTA file not found"),
        ("bad_target", "--targets: 'Oct4'"),
        ("center", "--center 100 is longer"),
        ("no_model", "model file not found"),
        ("bad_model", "not a loadable basset-hpo model"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, case: str, message: str) -> None:
    model = save_model(planted_model(MOTIF, SEQ_LEN), tmp_path / "m.pt", ["MafK"])
    fasta = _fasta(tmp_path / "s.fa", {"a": sequence()})
    args = [str(model), str(fasta), str(tmp_path / "out")]
    if case == "no_fasta":
        args[1] = str(tmp_path / "none.fa")
    elif case == "bad_target":
        args += ["--targets", "Oct4"]
    elif case == "center":
        args += ["--center", "100"]
    elif case == "no_model":
        args[0] = str(tmp_path / "none.pt")
    else:
        (tmp_path / "bad.pt").write_bytes(b"garbage")
        args[0] = str(tmp_path / "bad.pt")
    assert run_cli(main, args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()

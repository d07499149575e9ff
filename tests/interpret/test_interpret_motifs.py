"""basset-motifs on hand-made networks whose first filter is a known motif."""

from __future__ import annotations

import numpy as np
import pytest

from basset.cli.motifs import main
from basset.interpret.jaspar import best_matches, jaspar_vertebrates
from basset.interpret.motifs import (
    filter_motifs,
    logos_html,
    match_filters,
    meme_text,
    table_text,
)
from interpret_models import planted_codes, planted_model, run_cli, save_data, save_model

# JASPAR 2024+ MAFK (MA0496.4) consensus; its longer site TGCTGACTCAGCA best-matches Mafg there.
MAFK = "CTGACTCAGC"
# memelite's TOMTOM is compiled by numba on its first call (one to two minutes in a fresh
# environment, cached after): every test that matches against JASPAR runs with -m slow.
memelite_compiles = pytest.mark.slow


@pytest.fixture(scope="module")
def motifs():
    rng = np.random.default_rng(7)
    codes, _ = planted_codes(rng, 200, 40, MAFK)
    return filter_motifs(planted_model(MAFK, 40, n_filters=2), codes)


@pytest.mark.parametrize("padding", ["same", "paper"])
def test_pwm_of_planted_filter_is_the_motif(padding: str) -> None:
    rng = np.random.default_rng(1)
    codes, _ = planted_codes(rng, 150, 40, MAFK)
    # The even width (10) takes the "same" graph's asymmetric padding: windows must stay aligned.
    found = filter_motifs(
        planted_model(MAFK, 40, n_filters=2, padding=padding), codes, batch_size=64
    )
    first, silent = found
    assert first.consensus == MAFK
    # Every planted site fires (score 7.5 > half the maximum); a random 10-mer needs >= 7 matches.
    assert 150 <= first.n_sites < 190
    assert first.pwm.max(axis=0).min() > 0.8
    assert np.allclose(first.pwm.sum(axis=0), 1.0)
    assert first.information > 12
    assert silent.n_sites == 0 and silent.max_activation == 0.0


def test_threshold_keeps_only_strong_windows() -> None:
    rng = np.random.default_rng(3)
    codes, _ = planted_codes(rng, 100, 40, MAFK)
    model = planted_model(MAFK, 40)
    loose, = filter_motifs(model, codes, threshold=0.3)
    strict, = filter_motifs(model, codes, threshold=0.9)
    assert strict.n_sites == 100  # only the perfect sites (7.5 > 0.9 x 7.5 needs all 10 bases)
    assert loose.n_sites > 200
    assert strict.pwm.max(axis=0).min() == pytest.approx((100 + 0.25) / 101)


@memelite_compiles
def test_best_jaspar_match_is_mafk(motifs) -> None:
    matches = match_filters(motifs, jaspar_vertebrates())
    assert set(matches) == {0}  # the silent filter is not compared
    best = matches[0]
    assert best.motif.matrix_id.startswith("MA0496.") and best.motif.name == "MAFK"
    assert best.p_value < 1e-5 and best.q_value < 0.01


@memelite_compiles
def test_diffuse_pwms_match_nothing() -> None:
    """Nearly uniform filters must not 'match' the nearly uniform spacer columns of long motifs
    (plain Euclidean TOMTOM gave them p ~ 1e-14 against CTCF); uniform ones are not compared."""
    rng = np.random.default_rng(0)
    diffuse = [rng.dirichlet(np.full(4, 2000.0), size=19).T for _ in range(3)]
    *weak, uniform = best_matches([*diffuse, np.full((4, 12), 0.25)], jaspar_vertebrates())
    assert uniform is None
    assert all(m.q_value > 0.05 for m in weak)


@memelite_compiles
def test_meme_table_and_logos(motifs) -> None:
    matches = match_filters(motifs, jaspar_vertebrates())
    meme = meme_text(motifs).splitlines()
    assert meme[0] == "MEME version 4"
    at = meme.index(f"MOTIF filter0 {MAFK}")
    assert meme[at + 1].startswith(
        f"letter-probability matrix: alength= 4 w= 10 nsites= {motifs[0].n_sites}"
    )
    rows = np.array([[float(v) for v in line.split()] for line in meme[at + 2 : at + 12]])
    assert rows.shape == (10, 4) and np.allclose(rows.sum(axis=1), 1.0, atol=1e-5)
    assert not any(line.startswith("MOTIF filter1") for line in meme)

    table = [line.split("\t") for line in table_text(motifs, matches).splitlines()]
    assert table[0][:4] == ["filter", "n_sites", "max_activation", "consensus"]
    assert table[1][3] == MAFK and table[1][5].startswith("MA0496.") and table[1][6] == "MAFK"
    assert table[2][3] == "no activation"

    page = logos_html(motifs, matches, "t")
    assert page.count("<svg xmlns") == 2 and 'href="#glyph-C"' in page and 'id="glyph-C"' in page
    assert page.index(MAFK) < page.index("no activation")


@memelite_compiles
def test_cli_writes_every_output(tmp_path, capsys) -> None:
    rng = np.random.default_rng(5)
    codes, _ = planted_codes(rng, 120, 40, MAFK)
    model = save_model(planted_model(MAFK, 40, n_filters=2), tmp_path / "m.pt", ["t0"])
    data = save_data(codes, tmp_path / "d.h5")
    out = tmp_path / "out"
    assert (
        main([str(model), str(data), str(out), "--max-seqs", "100", "--threshold", "0.9", "-q"])
        == 0
    )
    assert capsys.readouterr().err == ""
    assert {p.name for p in out.iterdir()} == {"filters_meme.txt", "table.tsv", "logos.html"}
    row = (out / "table.tsv").read_text().splitlines()[1].split("\t")
    assert row[:2] == ["0", "100"] and row[3] == MAFK and row[6] == "MAFK"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no_model", "model file not found"),
        ("bad_data", "not an HDF5 file"),
        ("bad_threshold", "--threshold"),
        ("out_is_file", "is a file"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, case: str, message: str) -> None:
    model = save_model(planted_model(MAFK, 40), tmp_path / "m.pt", ["t0"])
    data = save_data(planted_codes(np.random.default_rng(0), 20, 40, MAFK)[0], tmp_path / "d.h5")
    out = tmp_path / "out"
    args = [str(model), str(data), str(out)]
    if case == "no_model":
        args[0] = str(tmp_path / "missing.pt")
    elif case == "bad_data":
        (tmp_path / "bad.h5").write_text("not hdf5")
        args[1] = str(tmp_path / "bad.h5")
    elif case == "bad_threshold":
        args += ["--threshold", "1.5"]
    else:
        out.write_text("")
    assert run_cli(main, args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.is_dir()

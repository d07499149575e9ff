"""basset-preprocess --repair-scrambled on a file scrambled as Basset's HEAD seq_hdf5.py does."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from basset.cli.preprocess import main
from basset.data.h5read import load_data
from basset.data.onehot import N_CODE, onehot_from_codes
from basset.errors import DataError

LENGTH = 30


def head_scrambled_h5(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """What Basset HEAD writes: N replaced by a random base, (L, 4) booleans per sequence,
    flattened and reshaped to (N, 4, 1, L), stored as bool (an HDF5 enum). Returns the codes it
    one-hot encoded, per split."""
    rng = np.random.default_rng(seed)
    codes = {}
    with h5py.File(path, "w") as h5:
        h5["target_labels"] = np.array([b"a", b"b"])
        for name, n in (("train", 40), ("valid", 7), ("test", 5)):
            raw = rng.integers(0, 5, size=(n, LENGTH), dtype=np.uint8)  # with N (4)
            randomised = np.where(raw == N_CODE, rng.integers(0, 4, size=raw.shape), raw)
            codes[name] = randomised.astype(np.uint8)
            position_major = np.eye(4, dtype=bool)[randomised]  # (n, L, 4)
            h5[f"{name}_in"] = position_major.reshape(n, -1).reshape(n, 4, 1, LENGTH)
            h5[f"{name}_out"] = rng.integers(0, 2, size=(n, 2)).astype(np.int8)
        h5["test_headers"] = np.array([f"chr1:{i}-{i + LENGTH}(+)".encode() for i in range(5)])
    return codes


def test_repair_restores_the_exact_onehot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scrambled, repaired = tmp_path / "er.h5", tmp_path / "fixed.h5"
    codes = head_scrambled_h5(scrambled)
    with pytest.raises(DataError, match=r"scrambled one-hot.*basset-preprocess --repair-scrambled"):
        load_data(scrambled)

    assert main(["--repair-scrambled", str(scrambled), str(repaired)]) == 0
    captured = capsys.readouterr()
    assert "were given random bases" in captured.err and "cannot be recovered" in captured.err
    assert "repaired train 40, valid 7, test 5 sequences" in captured.out

    with h5py.File(repaired) as fixed, h5py.File(scrambled) as original:
        assert sorted(fixed) == sorted(original)
        for name, expected in codes.items():
            assert fixed[f"{name}_in"].dtype == np.float16
            np.testing.assert_array_equal(
                fixed[f"{name}_in"][:, :, 0, :], onehot_from_codes(expected)
            )
            np.testing.assert_array_equal(fixed[f"{name}_out"][()], original[f"{name}_out"][()])
        assert fixed["test_headers"][()].tolist() == original["test_headers"][()].tolist()
    data = load_data(repaired)
    np.testing.assert_array_equal(data.train.seqs, codes["train"])
    assert data.target_labels == ["a", "b"]


def test_repair_refuses_what_it_cannot_repair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scrambled, good, out = tmp_path / "er.h5", tmp_path / "good.h5", tmp_path / "out.h5"
    head_scrambled_h5(scrambled)
    assert main(["-q", "--repair-scrambled", str(scrambled), str(good)]) == 0
    assert capsys.readouterr().out == ""  # -q: no summary (the lost-N warning still shows)
    cases = {
        "the one-hot is not scrambled; nothing to repair": [str(good), str(out)],
        "data file not found": [str(tmp_path / "none.h5"), str(out)],
        "would overwrite the scrambled file": [str(scrambled), str(scrambled)],
    }
    garbage = tmp_path / "garbage.h5"
    with h5py.File(garbage, "w") as h5:
        h5["train_in"] = np.ones((4, 4, 1, LENGTH), dtype=np.float16)  # every channel hot
        h5["train_out"] = np.zeros((4, 1), dtype=np.int8)
    cases["not Basset's 2020 scramble"] = [str(garbage), str(out)]
    for message, paths in cases.items():
        assert main(["--repair-scrambled", *paths]) == 2, message
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]
        assert not out.exists()
    # The repair takes exactly two paths and no FASTA/table positionals.
    with pytest.raises(SystemExit) as usage:
        main(["--repair-scrambled", str(scrambled), str(out), "extra.fa"])
    assert usage.value.code == 2
    assert "--repair-scrambled takes no other paths" in capsys.readouterr().err

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from basset.cli.demo_data import main
from basset.data.demo import (
    ELEMENTS,
    TARGETS,
    TRANSFER_TARGETS,
    element_probs,
    generate_all,
    make_demo,
)
from basset.data.h5read import load_data

# sha256 over the default demo file's datasets (sorted names, raw bytes), before the transfer set
# was added: the default output must never change for the same seed.
DEFAULT_DEMO_SHA256 = "370f0937e462a1aca3881fd5e3509becad191cda1cfe5c4ca43148a2c6e8aa68"


def datasets(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path) as h5:
        return {name: h5[name][()] for name in h5}


def test_same_seed_same_data_different_seed_different(tmp_path: Path) -> None:
    a = make_demo(tmp_path / "a.h5", seed=3, n_seqs=300)
    b = make_demo(tmp_path / "b.h5", seed=3, n_seqs=300)
    c = make_demo(tmp_path / "c.h5", seed=4, n_seqs=300)
    first, second, other = datasets(a), datasets(b), datasets(c)
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    assert not np.array_equal(first["train_in"], other["train_in"])
    assert not np.array_equal(first["train_out"], other["train_out"])


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    for name, values in sorted(datasets(path).items()):
        sha.update(name.encode())
        sha.update(np.ascontiguousarray(values).tobytes())
    return sha.hexdigest()


def test_default_layout_and_positive_rates(tmp_path: Path) -> None:
    data = load_data(make_demo(tmp_path / "demo.h5"))
    assert digest(tmp_path / "demo.h5") == DEFAULT_DEMO_SHA256
    assert (len(data.train), len(data.valid), len(data.test or [])) == (4000, 1000, 1000)
    assert data.seq_len == 200 and data.target_labels == list(TARGETS) and data.num_targets == 12
    with h5py.File(tmp_path / "demo.h5") as h5:
        assert h5["train_in"].shape == (4000, 4, 1, 200) and h5["train_in"].dtype == np.uint8
        assert h5["train_out"].dtype == np.int8
    rates = np.concatenate([data.train.targets, data.valid.targets]).mean(axis=0)
    assert ((rates > 0.10) & (rates < 0.40)).all(), dict(zip(TARGETS, rates.round(3), strict=True))


def test_transfer_set_has_other_targets_and_other_sequences(tmp_path: Path) -> None:
    assert main([str(tmp_path / "small.h5"), "--set", "transfer", "-q"]) == 0
    small = load_data(tmp_path / "small.h5")
    source = load_data(make_demo(tmp_path / "source.h5"))
    assert (len(small.train), len(small.valid), len(small.test or [])) == (600, 300, 1000)
    assert small.target_labels == list(TRANSFER_TARGETS) and small.num_targets == 8
    assert not set(small.target_labels) & set(source.target_labels)
    assert small.seq_len == source.seq_len == 200
    seen = {row.tobytes() for split in (source.train, source.valid) for row in split.seqs}
    assert not any(row.tobytes() in seen for row in small.test.seqs)  # type: ignore[union-attr]
    rates = np.concatenate([small.train.targets, small.valid.targets]).mean(axis=0)
    assert ((rates > 0.05) & (rates < 0.35)).all(), dict(
        zip(TRANSFER_TARGETS, rates.round(3), strict=True)
    )
    # The transfer set's own sizes give way to explicit ones.
    make_demo(tmp_path / "t.h5", preset="transfer", n_seqs=100, valid=10, test=10)
    assert len(load_data(tmp_path / "t.h5").train) == 80


def test_background_is_gc_matched_and_motifs_are_planted() -> None:
    demo = generate_all(6000, 200, seed=1)
    gc = np.isin(demo.codes, (1, 2)).mean(axis=1)
    for label, column in zip(TARGETS, demo.targets.T, strict=True):
        assert abs(roc_auc_score(column, gc) - 0.5) < 0.06, label  # GC alone predicts little
    # The SOX2-POU5F1 pair sits at its fixed spacing: its consensus is far more common there.
    probs = element_probs()["SOX_OCT"]
    consensus, informative = probs.argmax(axis=1), probs.max(axis=1) > 0.5
    windows = np.lib.stride_tricks.sliding_window_view(demo.codes, len(consensus), axis=1)
    forward = (windows == consensus)[..., informative].mean(axis=2)
    reverse = (windows[..., ::-1] == 3 - consensus)[..., informative].mean(axis=2)
    near = np.maximum(forward, reverse).max(axis=1) > 0.9
    has_pair = demo.elements["SOX_OCT"]
    assert near[has_pair].mean() > 0.8 and near[~has_pair].mean() < 0.05
    assert set(demo.elements) == set(ELEMENTS)


def test_cli_writes_float16_and_rejects_bad_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d.h5"
    assert (
        main(
            [
                str(out),
                "--n-seqs",
                "120",
                "--valid",
                "20",
                "--test",
                "0.25",
                "--dtype",
                "float16",
                "-q",
            ]
        )
        == 0
    )
    data = load_data(out)
    assert (len(data.train), len(data.valid), len(data.test or [])) == (70, 20, 30)
    with h5py.File(out) as h5:
        n_columns = h5["train_in"][()].sum(axis=1)
        assert h5["train_in"].dtype == np.float16 and np.allclose(n_columns, 1)
    assert main([str(tmp_path / "short.h5"), "--seq-len", "10"]) == 2
    assert "--seq-len must be at least" in capsys.readouterr().err
    assert main([str(tmp_path / "none.h5"), "--n-seqs", "10", "--valid", "5", "--test", "5"]) == 2
    assert "leave no training data" in capsys.readouterr().err
    assert not (tmp_path / "short.h5").exists() and not (tmp_path / "none.h5").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--n-seqs", "0"], "argument --n-seqs: must be > 0, not 0"),
        (["--valid", "-1"], "argument --valid: '-1': give a fraction in [0, 1) or a whole count"),
        (["--test", "2.5"], "argument --test: '2.5': give a fraction in [0, 1) or a whole count"),
    ],
)
def test_bad_flags_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "demo.h5"), *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from basset.data.h5read import load_data
from basset.errors import DataError

CODES = np.array([[0, 1, 2, 3, 4, 0], [3, 3, 4, 2, 1, 0], [1, 1, 1, 1, 1, 1]], dtype=np.uint8)
TARGETS = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.int8)


def legacy_onehot(codes: np.ndarray, dtype: str = "float16", n_value: float = 0.25) -> np.ndarray:
    """Basset's pre-2020 dna_one_hot by hand: (N, 4, 1, L), A,C,G,T rows, N as n_value."""
    out = np.zeros((len(codes), 4, 1, codes.shape[1]), dtype=dtype)
    for i, row in enumerate(codes):
        for pos, code in enumerate(row):
            if code == 4:
                out[i, :, 0, pos] = n_value
            else:
                out[i, code, 0, pos] = 1
    return out


def write_h5(path: Path, datasets: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as h5:
        for name, value in datasets.items():
            h5.create_dataset(name, data=value)
    return path


def basic(onehot: np.ndarray, targets: np.ndarray = TARGETS) -> dict[str, np.ndarray]:
    return {
        "train_in": onehot,
        "train_out": targets,
        "valid_in": onehot,
        "valid_out": targets,
        "target_labels": np.array([b"cellA", b"cellB"]),
    }


def test_legacy_float16_uint8_and_bool_read_to_the_same_codes(tmp_path: Path) -> None:
    float16 = write_h5(
        tmp_path / "f16.h5",
        {
            **basic(legacy_onehot(CODES)),
            "test_in": legacy_onehot(CODES),
            "test_out": TARGETS,
            "test_headers": np.array([b"a", b"b", b"c"]),
        },
    )
    uint8 = write_h5(tmp_path / "u8.h5", basic(legacy_onehot(CODES, "uint8", 0)[:, :, 0, :]))
    boolean = write_h5(
        tmp_path / "b.h5", basic(legacy_onehot(CODES, "bool", 0), TARGETS.astype(bool))
    )
    float32 = write_h5(
        tmp_path / "f32.h5", basic(legacy_onehot(CODES, "float32"), TARGETS.astype(np.float32))
    )
    for path in (float16, uint8, boolean, float32):
        data = load_data(path)
        np.testing.assert_array_equal(data.train.seqs, CODES)
        np.testing.assert_array_equal(data.valid.targets, TARGETS.astype(np.float32))
        assert data.train.targets.dtype == np.uint8  # 0/1 targets held compact
        assert (
            data.target_labels == ["cellA", "cellB"] and data.seq_len == 6 and data.num_targets == 2
        )
    full = load_data(float16)
    assert full.test is not None and full.test.headers == ["a", "b", "c"]
    assert load_data(uint8).test is None


def test_default_labels_and_split_selection(tmp_path: Path) -> None:
    datasets = basic(legacy_onehot(CODES))
    del datasets["target_labels"]
    path = write_h5(
        tmp_path / "x.h5",
        {**datasets, "test_in": legacy_onehot(CODES[:1]), "test_out": TARGETS[:1]},
    )
    assert load_data(path).target_labels == ["t0", "t1"]
    only_test = load_data(path, splits=("test",))
    assert only_test.test is not None and len(only_test.test) == 1
    assert len(only_test.train) == 0 and only_test.seq_len == 6


def test_scrambled_onehot_is_detected(tmp_path: Path) -> None:
    # Basset's 2020 bug: (L, 4) position-major booleans reshaped to (4, 1, L).
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, size=(50, 40), dtype=np.uint8)
    position_major = np.eye(4, dtype=bool)[codes]  # (N, L, 4)
    scrambled = position_major.reshape(50, 4, 1, 40)
    targets = rng.integers(0, 2, size=(50, 2)).astype(np.int8)
    path = write_h5(tmp_path / "s.h5", basic(scrambled, targets))
    with pytest.raises(
        DataError,
        match=r"train_in: scrambled one-hot \(position-major data reshaped as channel-major\?\)",
    ):
        load_data(path)


def _case(name: str) -> dict[str, np.ndarray]:
    good = basic(legacy_onehot(CODES))
    nan_targets = TARGETS.astype(np.float32)
    nan_targets[1, 0] = np.nan
    changes: dict[str, dict[str, np.ndarray | None]] = {
        "missing": {"valid_in": None, "valid_out": None},
        "rows": {"train_out": TARGETS[:2]},
        "ndim": {"train_in": legacy_onehot(CODES)[:, :, 0, 0]},
        "channels": {"train_in": np.zeros((3, 6, 1, 4), np.float16)},
        "width": {"valid_out": np.zeros((3, 3), np.int8)},
        "length": {"valid_in": legacy_onehot(CODES[:, :5])},
        "nan": {"valid_out": nan_targets},
        "labels": {"target_labels": np.array([b"only-one"])},
        "empty train": {
            "train_in": np.zeros((0, 4, 1, 6), np.float16),
            "train_out": np.zeros((0, 2), np.int8),
        },
    }
    for key, value in changes[name].items():
        if value is None:
            del good[key]
        else:
            good[key] = value
    return good


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "missing datasets: valid_in, valid_out"),
        ("rows", "train_in has 3 rows but train_out has 2"),
        ("ndim", "train_in: 2 dimensions"),
        ("channels", "6 channels in shape (3, 6, 1, 4), expected 4 (A,C,G,T) (position-major"),
        ("width", "target width differs across splits (train 2, valid 3)"),
        ("length", "sequence length differs across splits (train 6, valid 5)"),
        ("nan", "valid_out has NaN or infinite targets in 1 rows"),
        ("labels", "target_labels names 1 targets but the data has 2"),
        ("empty train", "the train split is empty"),
    ],
)
def test_bad_files_raise_one_clear_error(case: str, message: str, tmp_path: Path) -> None:
    path = write_h5(tmp_path / "bad.h5", _case(case))
    with pytest.raises(DataError) as err:
        load_data(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_and_non_hdf5_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data file not found"):
        load_data(tmp_path / "absent.h5")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5\n")
    with pytest.raises(DataError, match="not an HDF5 file"):
        load_data(text)
    only_train = write_h5(
        tmp_path / "t.h5", {"train_in": legacy_onehot(CODES), "train_out": TARGETS}
    )
    with pytest.raises(DataError, match="missing datasets: test_in, test_out"):
        load_data(only_train, splits=("test",))

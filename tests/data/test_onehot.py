from __future__ import annotations

import numpy as np
import pytest

from basset.data.onehot import (
    codes_from_onehot,
    decode_codes,
    encode_codes,
    onehot_from_codes,
)
from basset.errors import DataError


def test_encode_maps_bases_lowercase_and_iupac() -> None:
    codes = encode_codes([b"ACGTacgtNRYn-", "acgTNNNNNNNNN"])
    assert codes.dtype == np.uint8
    assert codes[0].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 4, 4, 4]
    assert codes[1, :4].tolist() == [0, 1, 2, 3]


def test_encode_centre_trims_and_pads_as_basset() -> None:
    codes = encode_codes([b"AACCGGT", b"CG"], length=4)
    assert decode_codes(codes) == ["ACCG", "NCGN"]  # trim (7-4)//2 = 1 left; pad (4-2)//2 = 1 left
    assert decode_codes(encode_codes([b"ACG"], length=6)) == ["NACGNN"]


def test_encode_rejects_mixed_lengths_without_a_length() -> None:
    with pytest.raises(DataError, match=r"different lengths: 3 bp \(2 seqs\), 2 bp \(1 seqs\)"):
        encode_codes([b"ACG", b"AC", b"TTT"])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.uint8, np.bool_])
def test_onehot_round_trip_and_n_encoding(dtype: type) -> None:
    codes = np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]], dtype=np.uint8)
    onehot = onehot_from_codes(codes, dtype)
    assert onehot.shape == (2, 4, 5) and onehot.dtype == np.dtype(dtype)
    assert onehot[0, :, 1].tolist() == [0, 1, 0, 0]
    n_value = 0.25 if np.dtype(dtype).kind == "f" else 0
    assert onehot[0, :, 4].astype(float).tolist() == [n_value] * 4
    np.testing.assert_array_equal(codes_from_onehot(onehot), codes)

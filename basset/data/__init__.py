"""From peaks and sequences to Basset's HDF5 and back into memory: peak files, the merge into
features, the genome, FASTA, one-hot codes, splits, the HDF5 writer and reader, preprocessing,
the repair of scrambled files and the demo sets. Torch-free: nothing here imports torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from basset.lazy import lazy_names

if TYPE_CHECKING:
    from basset.data.demo import DEMO_SETS, make_demo
    from basset.data.fasta import read_fasta, read_fasta_all
    from basset.data.features import build_features, read_sample_table
    from basset.data.genome import Genome
    from basset.data.h5read import SPLITS, BassetData, Split, check_data, check_targets, load_data
    from basset.data.h5write import ONEHOT_DTYPES, SplitArrays, write_basset_h5
    from basset.data.merge import Features, Intervals, merge_intervals
    from basset.data.onehot import codes_from_onehot, encode_codes, onehot_from_codes
    from basset.data.peaks import PeakArrays
    from basset.data.preprocess import preprocess, read_table
    from basset.data.repair import repair_scrambled
    from basset.data.shared import open_shared, shared_data
    from basset.data.splits import split_counts, split_indices

__all__ = [
    "BassetData",
    "DEMO_SETS",
    "Features",
    "Genome",
    "Intervals",
    "ONEHOT_DTYPES",
    "PeakArrays",
    "SPLITS",
    "Split",
    "SplitArrays",
    "build_features",
    "check_data",
    "check_targets",
    "codes_from_onehot",
    "encode_codes",
    "load_data",
    "make_demo",
    "merge_intervals",
    "onehot_from_codes",
    "open_shared",
    "preprocess",
    "read_fasta",
    "read_fasta_all",
    "read_sample_table",
    "read_table",
    "repair_scrambled",
    "shared_data",
    "split_counts",
    "split_indices",
    "write_basset_h5",
]

__getattr__ = lazy_names(__name__, {
    "BassetData": "h5read",
    "Split": "h5read",
    "SPLITS": "h5read",
    "load_data": "h5read",
    "check_data": "h5read",
    "check_targets": "h5read",
    "SplitArrays": "h5write",
    "ONEHOT_DTYPES": "h5write",
    "write_basset_h5": "h5write",
    "preprocess": "preprocess",
    "read_table": "preprocess",
    "repair_scrambled": "repair",
    "open_shared": "shared",
    "shared_data": "shared",
    "build_features": "features",
    "read_sample_table": "features",
    "Genome": "genome",
    "PeakArrays": "peaks",
    "Intervals": "merge",
    "Features": "merge",
    "merge_intervals": "merge",
    "read_fasta": "fasta",
    "read_fasta_all": "fasta",
    "encode_codes": "onehot",
    "codes_from_onehot": "onehot",
    "onehot_from_codes": "onehot",
    "split_counts": "splits",
    "split_indices": "splits",
    "DEMO_SETS": "demo",
    "make_demo": "demo",
})

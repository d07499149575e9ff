"""Shared fixtures: tiny data made by the tests, the real data when it is present, devices."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from hpo_testutil import tiny_data, write_h5

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    """../shared/data/oct4_mafk beside the checkout (or $BASSET_SHARED_DATA, or /work/shared)."""
    candidates = [REPO.parent / "shared" / "data", Path("/work/shared/data")]
    if os.environ.get("BASSET_SHARED_DATA"):
        candidates.insert(0, Path(os.environ["BASSET_SHARED_DATA"]))
    for root in candidates:
        if (root / "oct4_mafk" / "oct4_mafk.fa").exists():
            return root / "oct4_mafk"
    return candidates[0] / "oct4_mafk"


SHARED_DATA = _shared_data()


@pytest.fixture
def oct4_mafk() -> Path:
    """The real Oct4/MafK peaks folder; skips when it is absent."""
    if not (SHARED_DATA / "oct4_mafk.fa").exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def tiny_h5(tmp_path: Path) -> Path:
    """tmp_path/tiny.h5: 200 sequences x 60 bp x 3 targets with planted motifs, in Basset's
    HDF5 layout (hpo_testutil.tiny_data)."""
    return write_h5(tmp_path / "tiny.h5", tiny_data())


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """Every device test runs on the CPU, and on CUDA when present."""
    return request.param


PG_ENV = "BASSET_HPO_TEST_PG_URL"  # a PostgreSQL server for the tests (.ci/postgres.sh)
PG_SKIP = f"{PG_ENV} is not set (source .ci/postgres.sh starts a server)"


@pytest.fixture
def pg_url() -> str:
    """The test PostgreSQL's URL (with its password); skips without one. Tests that use it are
    marked `postgres`."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(PG_SKIP)
    return url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`gpu` tests skip without CUDA, `postgres` tests without a server."""
    skips = {"gpu": None if torch.cuda.is_available() else pytest.mark.skip(reason="needs CUDA"),
             "postgres": None if os.environ.get(PG_ENV) else pytest.mark.skip(reason=PG_SKIP)}
    for item in items:
        for keyword, skip in skips.items():
            if skip is not None and keyword in item.keywords:
                item.add_marker(skip)

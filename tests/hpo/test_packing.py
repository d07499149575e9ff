"""--trials-per-gpu auto: the packing choice from (fake) card sizes, the memory share, MPS."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from basset.nn.model import parameter_count, training_bytes
from basset.params import JobParams, pretrained_params
from hpo import packing
from hpo.cli import main, parse_trials_per_gpu
from hpo.config import load_study
from hpo.devices import plan_devices
from hpo.packing import (
    CONTEXT_BYTES,
    GIB,
    choose_trials_per_gpu,
    data_bytes,
    largest_params,
    memory_fraction,
    mps_running,
)


def paper(batch_size: int) -> JobParams:
    params = pretrained_params()
    params.padding, params.batch_size = "paper", batch_size
    return params


def test_peak_estimate_scales_with_batch_and_matches_the_paper_nets_size() -> None:
    small, large = training_bytes(paper(128), 600, 164), training_bytes(paper(1024), 600, 164)
    assert large > 6 * small  # activations dominate at batch 1024
    # 4.1M parameters: weights, gradients and two optimiser states are 66 MB before the margin;
    # a batch-1024 step of the paper net peaks at a few GiB in fp32.
    assert 0.066e9 * 1.5 < training_bytes(paper(1), 600, 164) < 0.2e9
    assert 4.0e6 < parameter_count(paper(1), 600, 164) < 4.3e6
    assert 2 * GIB < large < 8 * GIB


@pytest.mark.parametrize(
    ("free_gib", "trial_gib", "mps", "expected"),
    [
        (79.0, 1.0, False, 4),  # H100, small trials: capped at 4 without MPS
        (79.0, 1.0, True, 8),  # ... 8 with an MPS daemon
        (79.0, 20.0, False, 3),  # 0.9 * 79 / (20 + 0.6) = 3.45
        (79.0, 70.0, False, 1),  # does not fit twice: one trial
        (10.0, 50.0, False, 1),  # does not even fit once: still one (it may yet run)
        (139.0, 12.0, True, 8),  # H200: 10 fit, MPS cap 8
    ],
)
def test_choice_from_fake_card_sizes(
    free_gib: float, trial_gib: float, mps: bool, expected: int
) -> None:
    assert choose_trials_per_gpu(int(free_gib * GIB), int(trial_gib * GIB), mps=mps) == expected


def test_choice_counts_the_cuda_context_of_every_process() -> None:
    # 4 x 2 GiB fits in 0.9 x 9 GiB only without the per-process context.
    assert choose_trials_per_gpu(9 * GIB, 2 * GIB) == 3
    assert choose_trials_per_gpu(9 * GIB, 2 * GIB - CONTEXT_BYTES) == 4


def test_memory_fraction_shares_the_card() -> None:
    assert memory_fraction(1) == pytest.approx(0.9)
    assert memory_fraction(4) == pytest.approx(0.225)
    assert 3 * memory_fraction(3) < 1.0


def test_data_bytes_are_codes_and_float_targets() -> None:
    assert data_bytes(1000, 600, 164) == 1000 * 600 + 1000 * 164 * 4


def test_mps_detected_only_from_a_running_daemons_pipe(tmp_path: Path) -> None:
    assert not mps_running({"CUDA_MPS_PIPE_DIRECTORY": str(tmp_path)})
    (tmp_path / "control").touch()
    assert mps_running({"CUDA_MPS_PIPE_DIRECTORY": str(tmp_path)})


def test_largest_params_take_the_top_of_every_range() -> None:
    config = load_study("demo")
    biggest = largest_params(config, 600)
    assert biggest.conv_filters == [256, 128, 128] and biggest.hidden_units == [256, 256]
    assert biggest.conv_filter_sizes == [25, 11, 11] and biggest.batch_size == 128
    assert biggest.pool_width == [4, 4, 38]  # the last one "global": 600 -> 150 -> 38 positions


def test_auto_uses_the_cards_free_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_h5: Path
) -> None:
    from hpo_testutil import study_toml

    monkeypatch.chdir(tmp_path)
    config = load_study(str(study_toml(tmp_path, "")))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    free = {0: 80 * GIB, 1: GIB}  # GPU 1 is nearly full: room for one trial
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (free[i], 80 * GIB))
    monkeypatch.setattr(packing, "mps_running", lambda: False)
    assert plan_devices(None, "auto", None, config=config) == ["cuda:0"] * 4 + ["cuda:1"]
    assert plan_devices("1", 2, None) == ["cuda:1", "cuda:1"]


def test_trials_per_gpu_flag_parsing(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_trials_per_gpu("auto") == "auto" and parse_trials_per_gpu("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match=">= 1"):
        parse_trials_per_gpu("0")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--study", "demo", "--trials-per-gpu", "many"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--trials-per-gpu: expected a number or auto, got 'many'" in err[0]


@pytest.mark.gpu
def test_a_packed_worker_cannot_allocate_beyond_its_share() -> None:
    device = torch.device("cuda", 0)
    total = torch.cuda.get_device_properties(device).total_memory
    try:
        packing.cap_memory(device, 4)  # 0.9 / 4 of the card
        within = torch.empty(int(0.1 * total), dtype=torch.uint8, device=device)
        del within
        with pytest.raises(torch.cuda.OutOfMemoryError):
            torch.empty(int(0.3 * total), dtype=torch.uint8, device=device)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        torch.cuda.empty_cache()

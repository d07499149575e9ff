"""`basset-hpo space --json`: the study's space as plain data another engine can search, and
basset.params_from_flat turning its configurations into the params the service would train."""

from __future__ import annotations

import json
import random

import pytest

from basset import params_from_flat
from hpo.cli import main
from hpo.config import load_study


def _listing(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    assert main(["space", "--study", "demo", "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_the_demo_space_with_its_conditions(capsys: pytest.CaptureFixture[str]) -> None:
    listing = _listing(capsys)
    params = {p["name"]: p for p in listing["parameters"]}
    assert params["num_conv"] == {"name": "num_conv", "type": "int", "low": 1, "high": 3,
                                  "log": False}
    assert "condition" not in params["conv_filters_0"]
    assert params["conv_filters_1"]["condition"] == {"num_conv": [2, 3]}
    assert params["conv_filters_2"]["condition"] == {"num_conv": [3]}
    # the last layer pools by last_pool_width: pool_width_0 exists from two layers on
    assert params["pool_width_0"]["condition"] == {"num_conv": [2, 3]}
    assert "pool_width_2" not in params
    assert params["hidden_units_1"]["condition"] == {"num_hidden": [2]}
    assert params["last_pool_width"]["choices"] == [4, "global"]
    assert params["conv_filters_0"] == {"name": "conv_filters_0", "type": "int", "low": 64,
                                        "high": 256, "log": True}
    assert len(params) == 26
    assert (listing["max_epochs"], listing["stagnant_t"], listing["padding"]) == (10, 3, "same")


def test_the_reference_through_params_from_flat_is_the_studys(
        capsys: pytest.CaptureFixture[str]) -> None:
    listing = _listing(capsys)
    paper, small = listing["references"]
    assert paper["label"] == "paper-scaled" and paper["values"]["rc"] is False
    assert small["label"] == "small-data" and small["values"]["rc"] is True
    wanted = load_study("demo").enqueue
    built = [params_from_flat({**listing["fixed"], **ref["values"]}, padding=listing["padding"],
                              seq_len=200).validate() for ref in (paper, small)]
    assert built[0].conv_filters == [64, 48, 48] == wanted[0].params.conv_filters
    assert built[0].pool_width == [3, 4, 4] and built[0].hidden_units == [128, 128]
    assert built[0].to_dict() == {**wanted[0].params.to_dict(), "padding": "same"}
    # the global pool resolved to the whole (same-padded) 200 bp
    assert built[1].pool_width == [200] and built[1].last_pool == "soft"
    assert built[1].to_dict() == {**wanted[1].params.to_dict(), "padding": "same",
                                  "pool_width": [200]}


def test_draws_that_ignore_the_conditions_still_build(capsys: pytest.CaptureFixture[str]) -> None:
    listing = _listing(capsys)
    rng = random.Random(0)
    for _ in range(20):
        values = {p["name"]: rng.choice(p["choices"]) if p["type"] == "categorical"
                  else (rng.randint(p["low"], p["high"]) if p["type"] == "int"
                        else rng.uniform(p["low"], p["high"]))
                  for p in listing["parameters"]}
        built = params_from_flat(values, padding="same", seq_len=200).validate()
        assert built.num_conv == values["num_conv"]
        assert built.conv_filters == [values[f"conv_filters_{i}"]
                                      for i in range(values["num_conv"])]
        if values["last_pool_width"] == "global":
            assert built.pool_width[-1] >= 1


def test_text_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["space", "--study", "demo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "conv_filters_2\tint [32, 128] log  if num_conv in [3]" in lines
    assert len(lines) == 26

from __future__ import annotations

from pathlib import Path

import pytest

from basset.errors import ParamsError
from basset.params import JobParams, parse_params, pretrained_params, read_params, write_params


def test_pretrained_table_parses_to_the_paper_configuration() -> None:
    p = pretrained_params()
    assert p.conv_filters == [300, 200, 200]
    assert p.conv_filter_sizes == [19, 11, 7]
    assert p.pool_width == [3, 4, 4]
    assert p.hidden_units == [1000, 1000]
    assert p.hidden_dropouts == [0.3, 0.3]
    assert p.conv_dropouts == [0.0, 0.0, 0.0]
    assert p.learning_rate == 0.002
    assert p.weight_norm == 7
    assert p.momentum == 0.98
    assert p.batch_size == 128 and p.optimization == "rmsprop"


def test_write_then_read_gives_the_same_params(tmp_path: Path) -> None:
    original = JobParams(
        conv_filters=[64, 128],
        conv_filter_sizes=[8, 5],
        pool_width=[2, 3],
        conv_dropouts=[0.1, 0.0],
        hidden_units=[333],
        hidden_dropouts=[0.45],
        learning_rate=0.000123456789,
        optimization="adam",
        weight_norm=6.5,
        padding="paper",
        last_pool="soft",
    )
    write_params(original, tmp_path / "p.txt")
    assert read_params(tmp_path / "p.txt") == original
    assert list(tmp_path.iterdir()) == [tmp_path / "p.txt"]  # no temp file left behind


def test_table_is_what_the_lua_parser_reads() -> None:
    # The Lua pattern ([%w%p]+)%s+([%w%p]+): exactly two tokens per line, no blanks inside.
    for line in pretrained_params().to_table().splitlines():
        key, value = line.split("\t")
        assert key and value and " " not in value


def test_no_hidden_layer_survives_the_table() -> None:
    # No hidden_units line would read back as the default 500 units: the table says 0.
    none = JobParams(conv_filters=[8], conv_filter_sizes=[5], hidden_units=[]).validate()
    assert "hidden_units\t0\n" in none.to_table()
    again = parse_params(none.to_table())
    assert again == none and again.hidden_units == [] and again.hidden_dropouts == []


def test_single_dropout_is_broadcast() -> None:
    p = parse_params("hidden_units 100\nhidden_units 50\nhidden_dropouts 0.5\n")
    assert p.hidden_dropouts == [0.5, 0.5]


@pytest.mark.parametrize(
    "text, message",
    [
        ("conv_filter 300\n", "line 1: unknown key 'conv_filter' (did you mean conv_filters?)"),
        ("learning_rate fast\n", "line 1: learning_rate needs float value(s), got 'fast'"),
        ("conv_filters 3.5\n", "line 1: conv_filters needs int value(s), got '3.5'"),
        ("weight_norm\n", "line 1: expected 'key value'"),
        (
            "conv_filters 1\nconv_filters 2\nconv_filters 3\n"
            "conv_filter_sizes 5\nconv_filter_sizes 5\n",
            "conv_filter_sizes has 2 value(s) but conv_filters has 3",
        ),
        ("optimization sgd\n", "optimization must be one of rmsprop, adam, got 'sgd'"),
        ("last_pool mean\n", "last_pool must be one of max, soft, got 'mean'"),
        ("learning_rate 0.1\nlearning_rate 0.2\n", "learning_rate is given 2 times"),
        ("hidden_dropouts 1.5\n", "hidden_dropouts must be in [0, 1)"),
    ],
)
def test_bad_tables_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ParamsError) as err:
        parse_params(text, "job.txt")
    assert message in str(err.value)
    assert str(err.value).startswith("job.txt")


def test_presets_name_the_published_and_the_builtin_networks() -> None:
    from basset.params import PRESETS

    assert PRESETS["pretrained"]().conv_filters == [300, 200, 200]
    builtin = PRESETS["builtin"]()
    assert (builtin.conv_filters, builtin.conv_filter_sizes, builtin.hidden_units) == (
        [300, 300, 500], [21, 6, 4], [800])

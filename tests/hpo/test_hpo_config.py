"""Study files: the packaged studies load, bad ones fail in one line before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from basset.params import pretrained_params
from hpo.cli import main
from hpo.config import load_study
from hpo.errors import ConfigError
from hpo.space import reference_values
from hpo.storage import ENV_STORAGE, mask, parse_url, resolve_url
from hpo_testutil import TINY_SPACE, study_toml


def test_packaged_studies_load_with_the_reference_first() -> None:
    dnase = load_study("dnase")
    assert dnase.data == Path("er.h5") and dnase.n_trials == 200
    assert (
        dnase.sampler.type == "tpe" and dnase.sampler.multivariate and dnase.sampler.constant_liar
    )
    assert dnase.pruner.type == "asha" and dnase.pruner.min_resource == 1
    assert dnase.space["num_conv"].low == 1 and dnase.space["num_conv"].high == 5
    assert dnase.space["learning_rate"].log
    assert dnase.enqueue[0].label == "pretrained"
    values = reference_values(dnase, dnase.enqueue[0])
    assert values["num_conv"] == 3 and values["conv_filters_0"] == 300
    assert values["pool_width_1"] == 4 and values["last_pool_width"] == 4
    assert "pool_width_2" not in values and values["hidden_units_1"] == 1000
    demo = load_study("demo")
    assert demo.generate_demo_data and demo.data == Path("studies/demo_data.h5")
    assert demo.enqueue[0].params.conv_filter_sizes == pretrained_params().conv_filter_sizes


SPACE = "[space]\nnum_conv = [1, 2]\n"
BAD = [
    (
        {"space": SPACE + 'last_pool_width = { choices = [4, "all"] }'},
        "a last pool width is a whole number > 0 or \"global\", got 'all'",
    ),
    ({"space": SPACE + "conv_filterz_0 = [4, 8]"}, "unknown key 'conv_filterz_0'"),
    ({"pruner": 'type = "median"\nkeep_rising = -0.1'}, "pruner.keep_rising must be >= 0"),
    (
        {"pruner": 'type = "asha"\nkeep_rising = 0.01'},
        "pruner.keep_rising: the asha pruner judges a trial against its rung's peers",
    ),
    ({"pruner": 'type = "asha"\nmin_resource = 10'}, "pruner.min_resource (10) must be <"),
    ({"top": "max_epoch = 3"}, "unknown key 'max_epoch' (did you mean max_epochs?)"),
    ({"top": 'stagnant_t = "two"'}, "stagnant_t must be int, got 'two'"),
    ({"top": 'padding = "valid"'}, "padding must be one of paper, same"),
    ({"top": "max_epochs = = 3"}, "not valid TOML"),
    (
        {"pruner": 'type = "hyperband"\nmin_resource = 5'},
        "pruner.min_resource (5) must be < max_epochs (3)",
    ),
    ({"sampler": 'type = "spearmint"'}, "sampler.type must be one of tpe, random, gp, cmaes"),
    (
        {"space": SPACE + "conv_filter = [4, 8]"},
        "space: unknown key 'conv_filter' (did you mean conv_filters?)",
    ),
    (
        {"space": SPACE + "conv_filters = [8, 4]"},
        "space.conv_filters: low must be < high, got [8, 4]",
    ),
    (
        {"space": SPACE + "learning_rate = {low = 0.0, high = 0.1, log = true}"},
        "space.learning_rate: a log range needs low > 0",
    ),
    ({"space": SPACE + "conv_filters = [4.5, 8]"}, "space.conv_filters.low must be int, got 4.5"),
    (
        {"space": TINY_SPACE.replace("[fixed]", "hidden_dropouts = [0.0, 1.0]\n[fixed]")},
        "hidden_dropouts must be in [0, 1)",
    ),
    ({"space": TINY_SPACE + "learning_rate = 0.01"}, "fixed.learning_rate: also in [space]"),
    (
        {
            "space": TINY_SPACE.replace(
                "[fixed]", 'optimization = {choices = ["rmsprop", "sgd"]}\n[fixed]'
            )
        },
        "optimization must be one of rmsprop, adam",
    ),
    (
        {"space": SPACE + "conv_filters = [4, 8]"},
        "conv_filter_sizes: search it in [space] or set it",
    ),
    (
        {
            "top": "enqueue = [{conv_filters = [8], conv_filter_sizes = [5], hidden_units = [8], "
            "pool_width = [2], batch_size = 64}]"
        },
        "enqueue[0] (enqueue[0]): batch_size is 64 but the study would use 32",
    ),
    ({"top": 'enqueue = ["no_such_params.txt"]'}, "params file not found: no_such_params.txt"),
    (
        {"top": "enqueue = [{conv_filters = [8], conv_filter_sizes = [5], rc = true}]"},
        "enqueue[0] (enqueue[0]): rc = true, but the study neither searches rc nor fixes it",
    ),
    (
        {"top": 'enqueue = [{conv_filters = [8], conv_filter_sizes = [5], rc = "yes"}]'},
        "enqueue[0].rc: true or false, got 'yes'",
    ),
    (
        {"top": 'enqueue = [{conv_filters = [8], conv_filter_sizes = [5], '
                'last_pool_width = "global"}]'},
        "enqueue[0] (enqueue[0]): last_pool_width given, but the study does not search it",
    ),
    (
        {"top": 'enqueue = [{conv_filters = [8], conv_filter_sizes = [5], '
                'last_pool_width = "all"}]'},
        'enqueue[0].last_pool_width: a last pool width is a whole number > 0 or "global"',
    ),
]


@pytest.mark.parametrize(("parts", "message"), BAD)
def test_bad_study_files_fail_in_one_line(
    tmp_path: Path, parts: dict[str, str], message: str
) -> None:
    path = study_toml(tmp_path, **parts)
    with pytest.raises(ConfigError) as err:
        load_study(str(path))
    text = str(err.value)
    assert message in text
    assert "\n" not in text and text.startswith(str(path))


def test_cli_reports_a_bad_study_in_one_line_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    path = study_toml(tmp_path, "max_epoch = 3")
    assert main(["run", "--study", str(path), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean max_epochs?" in err
    assert not (tmp_path / "studies").exists()


def test_study_lookup_prefers_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    study_toml(tmp_path / "studies", 'seed = 7', name="demo")
    assert load_study("demo").seed == 7  # ./studies/demo.toml, not the packaged one
    with pytest.raises(ConfigError, match=r"no study 'nope'.*\(demo, demo-transfer, dnase\)"):
        load_study("nope")


def test_storage_url_precedence_and_masking(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = load_study("demo")
    monkeypatch.delenv(ENV_STORAGE, raising=False)
    assert resolve_url(None, config.name, config.storage) == "sqlite:///studies/demo.db"
    monkeypatch.setenv(ENV_STORAGE, "sqlite:///env.db")
    assert resolve_url(None, "demo") == "sqlite:///env.db"
    assert resolve_url("sqlite:///flag.db", "demo", "sqlite:///toml.db") == "sqlite:///flag.db"
    monkeypatch.delenv(ENV_STORAGE)
    assert resolve_url(None, "demo", "sqlite:///toml.db") == "sqlite:///toml.db"
    url = "postgresql+psycopg://basset:s3cret@db.example:5432/hpo"
    assert mask(url) == "postgresql+psycopg://basset:***@db.example:5432/hpo"
    with pytest.raises(ConfigError) as err:
        parse_url("mysql://basset:s3cret@host/db")
    assert "s3cret" not in str(err.value) and "***" in str(err.value)
    with pytest.raises(ConfigError, match="in-memory SQLite"):
        parse_url("sqlite://")


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg:///db?user=u&password=PW1&host=h",
     "postgresql+psycopg:///db?host=h&password=***&user=u"),
    ("postgresql+psycopg://u:PW1@h/db?sslpassword=PW2&passfile=/home/u/.pgpass&application_name=a",
     "postgresql+psycopg://u:***@h/db?application_name=a&passfile=%2Fhome%2Fu%2F.pgpass"
     "&sslpassword=***"),
    ("postgresql+psycopg://u@h/db?PASSWD=PW1&api_token=PW2&dsn=host%3Dh+password%3DPW3",
     "postgresql+psycopg://u@h/db?PASSWD=***&api_token=***&dsn=***"),
    ("postgresql+psycopg://u:PW1@h:notaport/db?password=PW2&x=1",  # SQLAlchemy cannot parse it
     "postgresql+psycopg://u:***@h:notaport/db?password=***&x=1"),
    ("postgresql+psycopg://u:PW1@x@[::1/db", "postgresql+psycopg://u:***@[::1/db"),
])
def test_every_credential_a_url_can_carry_is_masked(url: str, shown: str) -> None:
    assert mask(url) == shown
    assert not any(f"PW{i}" in mask(url) for i in (1, 2, 3))


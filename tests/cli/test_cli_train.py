"""basset-train / basset-test / basset-predict as a user runs them, on tiny data made here."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from basset.cli.train import build_train_parser, predict_main, train_main
from basset.cli.train import test_main as basset_test  # not named test_*: pytest would collect it
from basset.data.h5write import SplitArrays, write_basset_h5
from basset.training.checkpoint import load_model, read_checkpoint
from hpo_testutil import tiny_data, write_h5
from synth_data import make_data, one_thread

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

TINY_JOB = """\
conv_filters 8
conv_filters 8
conv_filter_sizes 6
conv_filter_sizes 3
pool_width 2
pool_width 2
hidden_units 16
batch_size 32
learning_rate 0.01
"""


@pytest.fixture
def tiny_h5(tmp_path: Path) -> Path:
    data = make_data(n_train=512)
    splits = {
        name: SplitArrays(split.seqs, split.targets, split.headers or [])
        for name, split in (("train", data.train), ("valid", data.valid), ("test", data.test))
    }
    return write_basset_h5(tmp_path / "tiny.h5", splits, data.target_labels)


@pytest.fixture
def job(tmp_path: Path) -> Path:
    path = tmp_path / "job.txt"
    path.write_text(TINY_JOB)
    return path


def test_lua_spellings_parse_like_modern_ones() -> None:
    parser = build_train_parser()
    lua = parser.parse_args(
        "-cuda -job p.txt -stagnant_t 7 -save out/x -restart r.pt -seed s.pt -rand 3 "
        "-max_epochs 9 -rc -drop_rate -result res.txt data.h5".split()
    )
    modern = parser.parse_args(
        "--cuda --job p.txt --stagnant-t 7 --save out/x --restart r.pt --seed s.pt --rand 3 "
        "--max-epochs 9 --rc --drop-rate --result res.txt data.h5".split()
    )
    assert vars(lua) == vars(modern)
    assert (lua.stagnant_t, lua.max_epochs, lua.rand, lua.cuda, lua.rc, lua.drop_rate) == (
        7, 9, 3, True, True, True
    )
    defaults = parser.parse_args(["data.h5"])
    assert (defaults.save, defaults.stagnant_t, defaults.max_epochs, defaults.rand) == (
        "dnacnn", 10, 1000, 1
    )
    assert defaults.amp and not defaults.legacy_order


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("flag", [["-cuda"], ["--device", "cuda:7"]])
def test_missing_gpu_is_one_line_and_exit_2(
    tiny_h5: Path, flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert train_main([*flag, str(tiny_h5)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA" in err[0]


def test_device_that_does_not_exist_is_refused(
    tiny_h5: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    count = torch.cuda.device_count()
    assert train_main(["--device", f"cuda:{count + 3}", str(tiny_h5)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_train_test_predict(tmp_path: Path, tiny_h5: Path, job: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    prefix = tmp_path / "runs" / "m"
    result = tmp_path / "result.txt"
    code = train_main(["-q", "-job", str(job), "-max_epochs", "3", "-save", str(prefix),
                       "-result", str(result), "--padding", "paper", str(tiny_h5)])
    assert code == 0
    best = float(result.read_text())
    assert 0.8 < best <= 1.0
    rows = Path(f"{prefix}_metrics.tsv").read_text().splitlines()
    assert len(rows) == 4 and max(float(r.split("\t")[3]) for r in rows[1:]) == pytest.approx(best)
    assert load_model(f"{prefix}_best.pt").params.padding == "paper"

    out_dir = tmp_path / "test_out"
    assert basset_test(["-q", f"{prefix}_best.pt", str(tiny_h5), str(out_dir)]) == 0
    printed = capsys.readouterr().out
    aucs = [line.split("\t") for line in (out_dir / "aucs.txt").read_text().splitlines()]
    assert [a[:2] for a in aucs] == [["0", "t0"], ["1", "t1"]]
    mean = np.mean([float(a[2]) for a in aucs])
    assert mean > 0.75 and f"mean AUROC {mean:.4f}" in printed

    tsv = tmp_path / "pred.tsv"
    assert predict_main(["-q", f"{prefix}_best.pt", str(tiny_h5), str(tsv)]) == 0
    lines = tsv.read_text().splitlines()
    assert lines[0] == "id\tt0\tt1" and len(lines) == 1 + 64
    assert lines[1].split("\t")[0] == "seq0"

    # FASTA records of other lengths are centre-trimmed / padded to the model's 50 bp.
    fasta = tmp_path / "new.fa"
    fasta.write_text(
        ">long extra words\n" + "ACGT" * 20 + "\n>short\nacgtacgtac\n>wrapped\nACGTA\nCCGTA\n"
    )
    assert predict_main(["-q", f"{prefix}_best.pt", str(fasta), str(tsv)]) == 0
    rows = [line.split("\t") for line in tsv.read_text().splitlines()[1:]]
    assert [r[0] for r in rows] == ["long", "short", "wrapped"]
    values = np.array([[float(v) for v in r[1:]] for r in rows])
    assert values.shape == (3, 2) and ((values > 0) & (values < 1)).all()

    # The same records gzipped: the same predictions.
    zipped = tmp_path / "new.fa.gz"
    zipped.write_bytes(gzip.compress(fasta.read_bytes()))
    assert predict_main(["-q", f"{prefix}_best.pt", str(zipped), str(tsv)]) == 0
    assert [line.split("\t") for line in tsv.read_text().splitlines()[1:]] == rows


def test_restart_and_seed_from_the_command_line(tmp_path: Path, tiny_h5: Path, job: Path) -> None:
    prefix = tmp_path / "r"
    assert (
        train_main(["-q", "-job", str(job), "-max_epochs", "1", "-save", str(prefix), str(tiny_h5)])
        == 0
    )
    assert train_main(["-q", "-job", str(job), "-max_epochs", "2", "-save", str(prefix),
                       "-restart", f"{prefix}_check.pt", str(tiny_h5)]) == 0
    assert read_checkpoint(f"{prefix}_check.pt").state.epoch == 2
    assert train_main(["-q", "-max_epochs", "1", "-save", str(tmp_path / "s"),
                       "-seed", f"{prefix}_best.pt", "--freeze-conv", str(tiny_h5)]) == 0
    seeded, seed = load_model(tmp_path / "s_best.pt"), load_model(f"{prefix}_best.pt")
    # Without -job: the seed's whole architecture (not the default net), hidden layers included.
    assert seeded.params.conv_filters == [8, 8]
    assert seeded.params.hidden_units == seed.params.hidden_units


def test_a_restart_without_job_is_checked_with_the_checkpoints_params(
    tmp_path: Path, job: Path
) -> None:
    # 120 training sequences, fewer than the built-in net's batch of 128: only the checkpoint's
    # own params (batch 32) can train on them, and a restart trains those.
    small = write_h5(tmp_path / "small.h5", tiny_data())
    prefix = tmp_path / "r"
    assert train_main(["-q", "-job", str(job), "-max_epochs", "1", "-save", str(prefix),
                       str(small)]) == 0
    assert train_main(["-q", "-max_epochs", "2", "-save", str(prefix),
                       "-restart", f"{prefix}_check.pt", str(small)]) == 0
    assert read_checkpoint(f"{prefix}_check.pt").state.epoch == 2


def test_eval_every_from_the_command_line(tmp_path: Path, tiny_h5: Path, job: Path) -> None:
    # 512 sequences, batches of 32: every 100 sequences is 3 batches; 5 evaluations, the last
    # in the second epoch; a restart goes on to 7 and the TSV has every one.
    prefix = tmp_path / "e"
    common = ["-q", "-job", str(job), "--eval-every", "100", "-save", str(prefix)]
    assert train_main([*common, "-max_epochs", "5", str(tiny_h5)]) == 0
    assert read_checkpoint(f"{prefix}_check.pt").state.steps == 15
    assert train_main([*common, "-max_epochs", "7", "-restart", f"{prefix}_check.pt",
                       str(tiny_h5)]) == 0
    rows = [line.split("\t") for line in (tmp_path / "e_metrics.tsv").read_text().splitlines()]
    assert rows[0][0] == "epoch" and rows[0][-1] == "sequences"
    assert [(int(r[0]), int(r[-1])) for r in rows[1:]] == [(i, 96 * i) for i in range(1, 8)]


def test_bad_inputs_are_one_line_errors(tmp_path: Path, tiny_h5: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    bad_job = tmp_path / "bad.txt"
    bad_job.write_text("conv_filters 8\nconv_filter_sizes 60\npadding paper\n")
    assert train_main(["-q", "-job", str(bad_job), "-save", str(tmp_path / "b"), str(tiny_h5)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "conv layer 1" in err[0]
    assert not list(tmp_path.glob("b_*"))
    assert basset_test([str(tmp_path / "none.pt"), str(tiny_h5), str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err


def test_console_script_runs() -> None:
    script = Path(sys.executable).parent / "basset-train"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "-stagnant_t" in done.stdout


@pytest.mark.slow
def test_oct4_mafk_reaches_098(oct4_mafk: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    preprocess = pytest.importorskip("basset.cli.preprocess")
    h5 = tmp_path / "oct4_mafk.h5"
    assert preprocess.main([str(oct4_mafk / "oct4_mafk.fa"), str(oct4_mafk / "oct4_mafk_act.txt"),
                            str(h5), "-v", "700", "-t", "700", "-q"]) == 0
    job = tmp_path / "job.txt"
    job.write_text(
        "conv_filters 100\nconv_filters 100\nconv_filters 100\n"
        "conv_filter_sizes 19\nconv_filter_sizes 11\nconv_filter_sizes 7\n"
        "pool_width 3\npool_width 4\npool_width 4\n"
        "hidden_units 300\nhidden_dropouts 0.3\nweight_norm 7\n"
    )
    result = tmp_path / "result.txt"
    prefix = tmp_path / "oct4"
    torch.set_num_threads(2)
    assert train_main(["-q", "-job", str(job), "-max_epochs", "5", "-save", str(prefix),
                       "-result", str(result), str(h5)]) == 0
    assert float(result.read_text()) >= 0.98
    assert basset_test(["-q", f"{prefix}_best.pt", str(h5), str(tmp_path / "test")]) == 0
    mean = float(capsys.readouterr().out.split()[2])
    assert mean >= 0.98

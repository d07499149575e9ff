"""basset-hpo dashboard: optuna-dashboard's REST API serves the study; Ctrl-C stops it with exit
0; a port in use or a missing study is one line and exit 2."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.cli import main

ENTRY = "import sys; from hpo.cli import main; sys.exit(main())"


def _study(tmp_path: Path) -> str:
    """A study made directly in the storage: 3 complete trials, 1 pruned, 1 running."""
    url = f"sqlite:///{tmp_path}/studies/dash.db"
    (tmp_path / "studies").mkdir()
    study = optuna.create_study(study_name="dash", storage=url, direction="maximize")
    for value in (0.7, 0.8, 0.75):
        study.tell(study.ask(), value)
    study.tell(study.ask(), state=TrialState.PRUNED)
    study.ask()
    other = optuna.create_study(study_name="other", storage=url)  # the API lists it too
    other.tell(other.ask(), 1.0)
    return url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _wait_until_up(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dashboard exited {proc.returncode}: {proc.communicate()}")
        try:
            _get(f"{base}/api/meta")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError("dashboard did not answer within 60 s")


def test_dashboard_serves_the_study_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    url = _study(tmp_path)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", ENTRY, "dashboard", "--study", "dash", "--storage", url,
         "--port", str(port)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, proc)
        studies = {s["study_name"]: s for s in _get(f"{base}/api/studies")["study_summaries"]}
        assert set(studies) == {"dash", "other"}
        study_id = studies["dash"]["study_id"]
        detail = _get(f"{base}/api/studies/{study_id}")
        assert detail["name"] == "dash"
        states = [t["state"] for t in detail["trials"]]
        assert len(states) == 5
        assert sorted(states) == sorted(["Complete"] * 3 + ["Pruned", "Running"])
        assert [t["values"] for t in detail["best_trials"]] == [[0.8]]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(
                f"Ctrl-C did not stop the dashboard: {proc.communicate()}"
            ) from None
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert f"http://127.0.0.1:{port}/dashboard/studies/{study_id}" in out


def test_a_port_in_use_and_a_missing_study_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _study(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dashboard", "--study", "dash", "--storage", url, "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: port {port} on 127.0.0.1 is in use") and err.count("\n") == 1
    assert main(["dashboard", "--study", "nope", "--storage", url, "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no study 'nope'") and err.count("\n") == 1
    missing = f"sqlite:///{tmp_path}/none.db"
    assert main(["dashboard", "--study", "dash", "--storage", missing]) == 2
    assert "no study database" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()

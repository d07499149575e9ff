"""Safe writes: temp files of killed writers are cleaned up (never a live one's), user-caused
OSErrors become one line, and our own bugs keep their traceback."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from basset.cli.common import cli_entry
from basset.fileio import (
    OutputError,
    atomic_path,
    remove_stale_temps,
    write_text_atomic,
)

KILLED_WRITER = """
import os, signal, sys
from basset.fileio import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"x" * 100_000)
    os.kill(os.getpid(), signal.SIGKILL)  # as a user's kill -9 in the middle of a write
"""


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


def test_a_killed_writers_temp_file_is_removed_by_the_next_write_a_live_ones_is_kept(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out.h5"
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)])
    assert killed.returncode == -signal.SIGKILL
    [stale] = _temps(tmp_path)
    assert stale.stat().st_size == 100_000 and not target.exists()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = socket.gethostname().replace("~", "_")
        theirs = tmp_path / f".out.h5.{host}~{live.pid}.abcdefgh.tmp"  # a writer still at work
        other_target = tmp_path / f".other.h5.{host}~999999999.abcdefgh.tmp"
        elsewhere = tmp_path / ".out.h5.another-host~999999999.abcdefgh.tmp"
        for path in (theirs, other_target, elsewhere):
            path.write_text("partial")
        write_text_atomic(target, "done\n")
        assert target.read_text() == "done\n"
        assert _temps(tmp_path) == sorted([theirs, other_target, elsewhere])
        assert remove_stale_temps(target) == []
    finally:
        live.kill()
        live.wait()
    assert remove_stale_temps(target) == [theirs]


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(ZeroDivisionError), atomic_path(target) as tmp:
        tmp.write_text("half")
        1 / 0  # noqa: B018
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("where", "says"),
    [("a_file/out.txt", "a_file is a file, not a folder"), ("a_folder", "it is a folder"),
     ("no/such/out.txt", "output folder does not exist")],
)
def test_outputs_in_the_way_are_refused_before_writing(tmp_path: Path, where: str,
                                                       says: str) -> None:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder").mkdir()
    with pytest.raises(OutputError, match=says):
        write_text_atomic(tmp_path / where, "text")


def _raising(err: BaseException):  # type: ignore[no-untyped-def]
    @cli_entry
    def main() -> int:
        raise err

    return main


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EISDIR])
def test_user_caused_os_errors_are_one_line_exit_2(code: int,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert _raising(OSError(code, os.strerror(code), "/data/x.db.lock"))() == 2
    assert capsys.readouterr().err == f"error: /data/x.db.lock: {os.strerror(code)}\n"


@pytest.mark.parametrize(
    "bug", [OSError(errno.EBADF, "Bad file descriptor"), OSError("no errno"), KeyError("params"),
            RuntimeError("ours")],
)
def test_our_own_bugs_keep_their_traceback(bug: BaseException) -> None:
    with pytest.raises(type(bug)):
        _raising(bug)()

"""Safe writes: temp files of killed writers are cleaned up (never a live one's), user-caused
OSErrors become one line, and our own bugs keep their traceback."""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
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


# --- What exists at the target is never replaced by anything but a regular file (issue 25).
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making device nodes needs root")


def _char_device(folder: Path, name: str, minor: int) -> Path:
    """A node like /dev/null (1, 3) or /dev/full (1, 7), made under `folder`."""
    node = folder / name
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    return node


def _same_node(path: Path, before: os.stat_result) -> bool:
    now = os.lstat(path)
    return (now.st_ino, now.st_mode, now.st_rdev) == (before.st_ino, before.st_mode, before.st_rdev)


@needs_root
def test_a_character_device_is_written_into_never_replaced(tmp_path: Path) -> None:
    null = _char_device(tmp_path, "null", 3)
    before = os.lstat(null)
    write_text_atomic(null, "into the device\n")
    with atomic_path(null) as tmp:  # as h5py and torch write: through the temp path
        tmp.write_bytes(b"\0" * 70_000)
    assert _same_node(null, before) and stat.S_ISCHR(os.lstat(null).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


@needs_root
def test_a_full_device_is_one_error_and_stays_a_device(tmp_path: Path) -> None:
    full = _char_device(tmp_path, "full", 7)
    before = os.lstat(full)
    with pytest.raises(OutputError, match=f"cannot write {full}: No space left on device"):
        write_text_atomic(full, "x" * 10_000)
    assert _same_node(full, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_a_fifo_is_written_into_for_its_reader(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    before = os.lstat(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_text_atomic(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert received == [b"through the pipe\n"]
    assert _same_node(fifo, before) and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_a_socket_is_refused_and_kept(tmp_path: Path) -> None:
    where = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(where))
        before = os.lstat(where)
        with pytest.raises(OutputError, match="it is a socket, not a regular file"):
            write_text_atomic(where, "x")
        assert _same_node(where, before)


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlink_is_kept_and_its_target_written(tmp_path: Path, dangling: bool) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "out.txt"
    if not dangling:
        target.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(Path("real") / "out.txt")  # relative, as ln -s makes them
    write_text_atomic(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(Path("real") / "out.txt")
    assert target.read_text() == "new\n" and not target.is_symlink()
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["out.txt"]


def test_a_loop_of_symlinks_is_refused_and_kept(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OutputError, match="a loop of symlinks"):
        write_text_atomic(tmp_path / "a", "x")
    assert os.readlink(tmp_path / "a") == "b" and os.readlink(tmp_path / "b") == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]

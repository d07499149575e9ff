"""Writing files safely, reading them as users ship them.

Writes: a reader (or a crash) never sees half a file, and a disk that is full, read-only or in
the way is one clear error, not a traceback. Temp files are named `.NAME.HOST~PID.XXXXXXXX.tmp`
beside their target: the next write to the same target removes those of processes on this host
that no longer run (a SIGKILL leaves its temp file behind), and never one whose process is alive.

Reads: gzip and a UTF-8 byte-order mark are handled (open_input).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import re
import shutil
import socket
import stat
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from basset.errors import BassetError, DataError

# OSErrors that a user's environment causes (as opposed to our bugs): reported in one line.
USER_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EISDIR,
    errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EFBIG, errno.ELOOP,
})


class OutputError(BassetError):
    """A file or folder that cannot be written (disk full, read-only, a file in the way)."""


def is_user_os_error(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in USER_ERRNOS


def describe_os_error(err: OSError) -> str:
    """`PATH: reason` in words (no errno numbers, no Python reprs)."""
    return f"{err.filename}: {_reason(err)}" if err.filename is not None else _reason(err)


def check_output_file(path: str | os.PathLike[str]) -> Path:
    """Fail now (before any work) if `path` cannot become a file: no such folder, a file where the
    folder should be, a folder (or a block device, a socket) where the file should be. A FIFO or
    a character device is written into (atomic_path), so it passes as it is."""
    path = Path(path)
    if _node_kind(path) in WRITTEN_INTO:
        return path
    parent = path.parent
    if not parent.is_dir():
        above = next((p for p in parent.parents if p.exists()), None)
        if parent.exists() or (above is not None and not above.is_dir()):
            raise OutputError(f"cannot write {path}: {_blocker(parent)} is a file, not a folder")
        raise OutputError(f"output folder does not exist: {parent}")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    kind = _node_kind(path)
    if kind not in (None, "regular file"):
        raise OutputError(f"cannot write {path}: it is a {kind}, not a regular file")
    _check_writable(parent)
    return path


# Special files written into rather than replaced: the user named a device or a pipe to write to.
WRITTEN_INTO = frozenset({"character device", "FIFO"})
_KINDS = ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "folder"),
          (stat.S_ISCHR, "character device"), (stat.S_ISFIFO, "FIFO"),
          (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"))


def _node_kind(path: Path) -> str | None:
    """What `path` is, symlinks followed ("regular file", "FIFO", ...); None if nothing."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing, a dangling link, or a folder we cannot look into
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "special file")


def check_output_folder(path: str | os.PathLike[str]) -> Path:
    """Fail now if `path` cannot become (or be) a folder: a file is in the way."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise OutputError(f"cannot use {path} as a folder: {p} is a file")
            _check_writable(p)
            break
    return path


Named = tuple[str, str | os.PathLike[str] | None]  # (what it is, its path); None: not given


def check_distinct(inputs: Sequence[Named], outputs: Sequence[Named]) -> None:
    """Refuse (before any work) an output that would overwrite one of the command's inputs or
    another of its outputs: the same path once resolved (symlinks, `./x`, `..`) or the same file
    under another name (a hard link). Entries are (what it is, path); a None path is skipped."""
    given_inputs = [(what, Path(path)) for what, path in inputs if path is not None]
    given_outputs = [(what, Path(path)) for what, path in outputs if path is not None]
    for index, (what, out) in enumerate(given_outputs):
        for other_what, other in given_inputs:
            if _same_file(out, other):
                raise OutputError(
                    f"{what} {out} would overwrite {other_what} {other}; choose another path"
                )
        for other_what, other in given_outputs[:index]:
            if _same_file(out, other):
                raise OutputError(
                    f"{what} {out} and {other_what} {other} are the same file; choose another path"
                )


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _check_writable(folder: Path) -> None:
    """Create and remove a file there: the only test that read-only mounts, permissions (which
    root bypasses) and file systems like /proc all answer truthfully."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".basset-probe.", suffix=".tmp")
    except OSError as err:
        raise OutputError(f"cannot write into {folder}: {_reason(err)}") from None
    os.close(fd)
    os.unlink(probe)


def _reason(err: OSError) -> str:
    return os.strerror(err.errno) if err.errno else str(err)


def output_folder(path: str | os.PathLike[str]) -> Path:
    """A script's output folder, made if missing (mkdir -p); a file in the way, a read-only disk
    or no permission is an OutputError."""
    path = check_output_folder(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        if not is_user_os_error(err):
            raise
        raise OutputError(f"cannot create folder {path}: {_reason(err)}") from None
    return path


def _blocker(folder: Path) -> Path:
    return next(p for p in (folder, *folder.parents) if p.exists())


_HOST = socket.gethostname().replace("~", "_")


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{_HOST}~{os.getpid()}."


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temp files of `path` left by dead processes of this host; return them."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{re.escape(_HOST)}~(\d+)\.[^.]+\.tmp")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        found = pattern.fullmatch(entry.name)
        if found and not process_alive(int(found.group(1))):
            with contextlib.suppress(FileNotFoundError):  # another writer removed it first
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this host still runs (a zombie does not: it has ended, only its
    parent has not reaped it)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (not Linux), or it ended just now
        return os.path.exists(f"/proc/{pid}") or not os.path.isdir("/proc")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it on success and removed on any failure.
    A full or read-only disk (or no permission) is an OutputError naming `path`.

    What exists at `path` is never replaced by anything but a regular file: a symlink's target
    is written (atomically, beside the target), a FIFO or a character device is written into,
    and any other special file is refused."""
    path = check_output_file(path)
    if _node_kind(path) in WRITTEN_INTO:
        with _written_into(path) as through:
            yield through
        return
    if path.is_symlink():
        target = Path(os.path.realpath(path))
        if target.is_symlink():  # realpath stops at a loop
            raise OutputError(f"cannot write {path}: a loop of symlinks")
        path = check_output_file(target)
    remove_stale_temps(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    except OSError as err:  # whatever the errno: the user's folder refuses a new file
        raise OutputError(f"cannot write {path}: {_reason(err)}") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the result is an ordinary file
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if is_user_os_error(err):
            raise _output_error(path, err, tmp) from None  # type: ignore[arg-type]
        raise


@contextlib.contextmanager
def _written_into(node: Path) -> Iterator[Path]:
    """A temporary file (in the system's temp folder) whose bytes are then written into the
    FIFO or character device `node` (opening a FIFO waits for its reader)."""
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(node), suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as source, os.fdopen(_open_sink(node), "wb") as sink:
            shutil.copyfileobj(source, sink)
    except BaseException as err:
        if is_user_os_error(err):
            raise _output_error(node, err, name) from None  # type: ignore[arg-type]
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _open_sink(node: Path) -> int:
    """A descriptor writing into `node`. A FIFO without a reader is waited for, unless it is
    this process's own stdout or stderr, whose reader has gone (then BrokenPipeError)."""
    if _node_kind(node) == "FIFO":
        try:
            fd = os.open(node, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as err:
            if err.errno != errno.ENXIO:
                raise
            found = os.stat(node)
            for own in (1, 2):
                with contextlib.suppress(OSError):
                    if os.path.samestat(os.fstat(own), found):
                        raise BrokenPipeError(errno.EPIPE, "the pipe's reader has gone") from None
        else:
            os.set_blocking(fd, True)
            return fd
    return os.open(node, os.O_WRONLY | os.O_TRUNC)


def _output_error(path: Path, err: OSError, tmp: str | None = None) -> OutputError:
    if err.filename not in (None, tmp, str(path), str(path.parent)):
        return OutputError(describe_os_error(err))  # about another file (e.g. a copy's source)
    return OutputError(f"cannot write {path}: {_reason(err)}")


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@contextlib.contextmanager
def open_input(path: str | os.PathLike[str], what: str) -> Iterator[BinaryIO]:
    """Open a text input for reading as bytes: gzip (plain or bgzip, told by its magic bytes, not
    its name) is decompressed on the fly and a UTF-8 byte-order mark is skipped. UTF-16/32 text
    (another byte-order mark) is refused: every reader here expects ASCII/UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    with path.open("rb") as raw:
        handle: BinaryIO = raw
        zipped = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if zipped:
            handle = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        failure = f"{path}: cannot read " + ("the gzip data" if zipped else what)
        try:
            head = handle.peek(4)[:4]  # type: ignore[attr-defined]
        except (OSError, EOFError) as err:
            raise DataError(f"{failure} ({err})") from None
        if head.startswith(UTF8_BOM):
            handle.read(len(UTF8_BOM))
        elif head.startswith(UTF16_BOMS):
            raise DataError(
                f"{path}: {what} is UTF-16 text (byte-order mark {head[:2].hex()}); "
                "save it as ASCII or UTF-8"
            )
        try:
            yield handle
        except (OSError, EOFError, zlib.error) as err:  # truncated or corrupt gzip
            raise DataError(f"{failure} ({err})") from None
def write_bytes_atomic(path: str | os.PathLike[str], data: bytes | memoryview) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)

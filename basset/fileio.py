"""Output files and folders (atomic writes: a reader, or a crash, never sees half a file; the
scripts' output folders) and inputs opened as users ship them (gzip, a byte-order mark)."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from basset.errors import BassetError, DataError


def output_folder(path: Path) -> Path:
    """A script's output folder, made if missing; DataError if a file has that name."""
    if path.exists() and not path.is_dir():
        raise DataError(f"output folder {path} is a file")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it on success and removed on any failure."""
    path = Path(path)
    if not path.parent.is_dir():
        raise BassetError(f"output folder does not exist: {path.parent}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the result is an ordinary file
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

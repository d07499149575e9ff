"""One read-only copy of a data set per host, for the workers of one process tree.

The owner (`basset-hpo run`, before it starts its workers) reads the HDF5 once, in blocks,
straight into .npy files of a folder in /dev/shm (memory shared by every process that maps it;
a temp folder on disk when /dev/shm lacks room: the page cache is shared just the same). Each
worker maps them read-only (`open_shared`): however many workers, the host holds one copy, and a
write to it fails loudly (numpy: "assignment destination is read-only"; through a torch tensor
the page protection ends the process with SIGSEGV rather than let a worker change the data of
the others).

The folder is `basset-data-<tag>-<pid of the owner>`, its manifest written last (a folder
without one is never opened). The owner removes it when it ends (`shared_data`'s exit, however
the block ends); a folder whose owner died without that (SIGKILL, a power cut of the process)
is removed by the next `shared_data` on the host (`remove_stale`). Workers own nothing, so a
killed worker leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from basset.data.h5read import SPLITS, BassetData, Split, read_into
from basset.fileio import process_alive

log = logging.getLogger(__name__)

PREFIX = "basset-data-"
MANIFEST = "manifest.json"
SHM = Path("/dev/shm")
SPARE_FRACTION = 0.9  # /dev/shm is used when the copy takes at most this share of its free space


class FileStore:
    """Arrays as .npy files of `folder` (h5read's Store), written through memory maps."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, str] = {}

    def new(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        file = f"{name}.{np.dtype(dtype).name}.npy"
        self.files[name] = file
        return np.lib.format.open_memmap(self.folder / file, mode="w+", dtype=dtype, shape=shape)

    def drop(self, name: str, array: np.ndarray) -> None:
        if isinstance(array, np.memmap) and array.filename:
            (self.folder / Path(array.filename).name).unlink()


def write_shared(path: Path, folder: Path) -> None:
    """Read the HDF5 at `path` into `folder` (made here), its manifest last."""
    folder.mkdir(mode=0o700)
    store = FileStore(folder)
    data = read_into(path, store)
    manifest = {
        "source": str(path),
        "files": store.files,
        "target_labels": list(data.target_labels),
        "headers": {name: getattr(data, name).headers for name in SPLITS
                    if getattr(data, name) is not None},
        "splits": [name for name in SPLITS if getattr(data, name) is not None],
    }
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest))
    tmp.rename(folder / MANIFEST)


def open_shared(folder: str | Path) -> BassetData:
    """The data set of a shared folder, every array a read-only memory map of its file."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    files, headers = manifest["files"], manifest["headers"]

    def split(name: str) -> Split | None:
        if name not in manifest["splits"]:
            return None
        return Split(seqs=np.load(folder / files[f"{name}_seqs"], mmap_mode="r"),
                     targets=np.load(folder / files[f"{name}_targets"], mmap_mode="r"),
                     headers=headers.get(name))

    train, valid = split("train"), split("valid")
    assert train is not None and valid is not None  # read_into reads every split
    return BassetData(train=train, valid=valid, test=split("test"),
                      target_labels=manifest["target_labels"])


def copy_bytes(path: Path) -> int:
    """What the shared copy of the HDF5 at `path` takes: uint8 codes and (at most) float32
    targets of every split."""
    with h5py.File(path, "r") as h5:
        total = 0
        for name in SPLITS:
            if f"{name}_in" in h5 and f"{name}_out" in h5:
                rows, length = h5[f"{name}_in"].shape[0], h5[f"{name}_in"].shape[-1]
                total += rows * (length + 4 * h5[f"{name}_out"].shape[1])
        return total


def base_folder(size: int) -> Path:
    """/dev/shm when it exists and has room for `size` bytes, else the temp folder."""
    if SHM.is_dir() and os.access(SHM, os.W_OK):
        if size <= SPARE_FRACTION * shutil.disk_usage(SHM).free:
            return SHM
        log.info("/dev/shm has no room for the %.1f GB shared copy: using %s", size / 1e9,
                 tempfile.gettempdir())
    return Path(tempfile.gettempdir())


def remove_stale(base: Path) -> list[Path]:
    """Remove the shared folders under `base` whose owner process is gone; those removed."""
    removed = []
    for folder in base.glob(f"{PREFIX}*-*"):
        pid = folder.name.rsplit("-", 1)[1]
        if pid.isdigit() and not process_alive(int(pid)) and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def folder_name(tag: str, pid: int) -> str:
    return f"{PREFIX}{re.sub(r'[^A-Za-z0-9_.]+', '_', tag)}-{pid}"


@contextmanager
def shared_data(path: str | Path, tag: str) -> Iterator[Path]:
    """Load the HDF5 at `path` once into a shared folder (named by `tag` and this process) and
    yield the folder for `open_shared`; the folder is removed when the block ends."""
    path = Path(path)
    base = base_folder(copy_bytes(path))
    for stale in remove_stale(base):
        log.info("removed %s (its process is gone)", stale)
    folder = base / folder_name(tag, os.getpid())
    shutil.rmtree(folder, ignore_errors=True)  # this pid's own leftover: an earlier process
    try:
        write_shared(path, folder)
        log.info("loaded %s once into %s for every worker", path, folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)

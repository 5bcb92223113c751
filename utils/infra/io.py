"""Atomic file writes: a crash leaves either the old file or the new one, never a truncated file.

Temporary files are named `.<name>.<random>.tmp` beside their target, so the next run can remove those a killed
write left behind (`remove_stale_temp_files`). Written files get the permissions the umask allows (mkstemp alone
would leave 0600), and tensors are serialised through a buffer so their bytes do not depend on the file name.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

TEMP_SUFFIX = ".tmp"


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call write(tmp_path) on a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # what open() would have given a new file
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def tensor_bytes(obj: Any) -> bytes:
    """What torch.save writes, the same bytes for the same tensors: torch.save names the records inside its zip
    archive after the file it writes to, so saving to a temporary file would embed that random name."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_tensors(path: str | os.PathLike, obj: Any) -> None:
    """torch.save, atomically, byte-identical for identical tensors (tensor_bytes)."""
    write_bytes(path, tensor_bytes(obj))


def write_json(path: str | os.PathLike, data: Any) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False, sort_keys=False, default=_to_jsonable)
            handle.write("\n")

    atomic_write(path, write)


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temp_files(*folders: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of writes that a kill interrupted (`.<name>.<random>.tmp`) in these folders."""
    stale = [p for folder in map(Path, folders) if folder.is_dir() for p in folder.glob(f".*{TEMP_SUFFIX}")
             if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _to_jsonable(value: Any) -> Any:
    """Let numpy/torch scalars and paths through json.dump."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

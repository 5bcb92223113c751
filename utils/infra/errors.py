"""One channel for mistakes a user can fix: a clear line on stderr and exit status 2, never a traceback.

Ctrl-C and a full disk get one line too: Ctrl-C exits 130 (as a shell reports SIGINT), naming how to resume.
"""
from __future__ import annotations

import errno
import functools
import sys
from typing import Callable, TypeVar

T = TypeVar("T")
INTERRUPTED_STATUS = 130
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class UserError(Exception):
    """Bad input (a config typo, a missing file, a mask that does not fit): the message says what to fix."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a message saying what was kept and how to continue (raised by the drivers that know it)."""


def exit_on_user_error(main: Callable[..., T]) -> Callable[..., T]:
    """Wrap a script's main() so a UserError prints one line and exits 2 instead of a traceback; Ctrl-C prints
    one line and exits 130; a full disk prints one line and exits 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as interrupt:
            message = str(interrupt) if isinstance(interrupt, Interrupted) else "interrupted; nothing was lost: " \
                "completed results are kept, and the same command starts again"
            print(message, file=sys.stderr)
            sys.exit(INTERRUPTED_STATUS)
        except OSError as error:
            if error.errno not in _DISK_FULL:
                raise
            where = f" writing {error.filename}" if error.filename else ""
            print(f"error: the disk is full{where}: free some space and run the same command again "
                  "(completed results are kept)", file=sys.stderr)
            sys.exit(2)

    return wrapper


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, for one-line reports of library errors."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

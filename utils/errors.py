"""One channel for mistakes a user can fix: a clear line on stderr and exit status 2, never a traceback."""
from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """Bad input (a config typo, a missing file, a mask that does not fit): the message says what to fix."""


def exit_on_user_error(main: Callable[..., T]) -> Callable[..., T]:
    """Wrap a script's main() so a UserError prints one line and exits 2 instead of a traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, for one-line reports of library errors."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

"""Progress bars and log output, with the conventions of the Hugging Face example scripts.

Bars (tqdm) are drawn only on the main process, only when stderr is a terminal, and never with --disable_tqdm;
otherwise the per---logging_steps lines are all a run prints. Library code logs through `logging` (logger
"utils.*"); `setup_logging` applies --log_level / --log_level_replica to it, to transformers and to datasets, and
sends its records to stdout, where the scripts' final tables go too.
"""
from __future__ import annotations

import logging
import sys
from typing import Any, Iterable, Optional

import datasets
import transformers
from tqdm.auto import tqdm

PACKAGE_LOGGER = "utils"


def bars_wanted(disable_tqdm: Optional[bool] = None, main_process: bool = True) -> bool:
    """Whether to draw bars: main process, a terminal on stderr, and not --disable_tqdm."""
    return main_process and not disable_tqdm and sys.stderr.isatty()


def progress_bar(iterable: Optional[Iterable] = None, enabled: Optional[bool] = None, **kwargs: Any) -> tqdm:
    """A tqdm bar that is a silent pass-through when disabled (`enabled` None: on a terminal only)."""
    enabled = bars_wanted() if enabled is None else enabled
    return tqdm(iterable, disable=not enabled, dynamic_ncols=True, leave=kwargs.pop("leave", False), **kwargs)


class _StdoutHandler(logging.Handler):
    """Writes records to the current sys.stdout through tqdm.write, so an active bar is not torn."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stdout)
        except Exception:  # noqa: BLE001 - logging must never stop a run
            self.handleError(record)


def setup_logging(training_args) -> None:
    """Log levels (--log_level on the main process, --log_level_replica elsewhere) and whether bars are drawn."""
    level = training_args.get_process_log_level()
    if training_args.log_level == "passive" and training_args.should_log:
        level = logging.INFO  # as the example scripts: the main process reports its progress
    logger = logging.getLogger(PACKAGE_LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _StdoutHandler)]:
        logger.removeHandler(handler)  # one handler, however many runs a process starts
    handler = _StdoutHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    library_level = max(level, logging.WARNING) if training_args.log_level == "passive" else level
    transformers.utils.logging.set_verbosity(library_level)
    datasets.utils.logging.set_verbosity(library_level)
    if bars_wanted(training_args.disable_tqdm, training_args.should_log):
        datasets.enable_progress_bars()  # tokenisation shows its progress
    else:
        datasets.disable_progress_bars()

"""Run a whole study (the paper's grids) from one study file: IMP, fine-tuning, baselines, analyses, a report.

    python study.py configs/studies/offline.json             # run what is not done yet, then write the report
    python study.py configs/studies/ner_transfer.json --dry_run   # every run, counts, GPU-hour estimate
    python study.py STUDY.json --restart 'imp/ner/fr/*'      # delete these runs (and their dependents), run again

Re-running skips complete runs, resumes unfinished IMP runs and re-runs failed ones; see docs/studies.md.
"""
import errno
import os
import sys

from utils.infra.errors import UserError, exit_on_user_error
from utils.study.runner import parse_study_args, run_study


@exit_on_user_error
def main(argv=None) -> int:
    args = parse_study_args(argv)
    try:
        return run_study(args)
    except BrokenPipeError:  # `--dry_run | head`: the reader stopped reading; end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0 if args.dry_run else 1
    except OSError as error:  # permission denied, a folder that vanished, ...: one line (a full disk has its own)
        if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise
        where = f": {error.filename}" if error.filename else ""
        raise UserError(f"{error.strerror or error}{where}") from None


if __name__ == "__main__":
    sys.exit(main())

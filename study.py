"""Run a whole study (the paper's grids) from one study file: IMP, fine-tuning, baselines, analyses, a report.

    python study.py configs/studies/offline.json             # run what is not done yet, then write the report
    python study.py configs/studies/ner_transfer.json --dry_run   # every run, counts, GPU-hour estimate
    python study.py STUDY.json --restart 'imp/ner/fr/*'      # delete these runs (and their dependents), run again

Re-running skips complete runs, resumes unfinished IMP runs and re-runs failed ones; see docs/studies.md.
"""
import sys

from utils.infra.errors import exit_on_user_error
from utils.study.runner import parse_study_args, run_study


@exit_on_user_error
def main(argv=None) -> int:
    return run_study(parse_study_args(argv))


if __name__ == "__main__":
    sys.exit(main())

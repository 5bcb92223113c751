"""Summarise IMP and fine-tuning runs: winning tickets, IMP curves, the transfer matrix, zero-shot evaluation.

    python summarize_results.py --runs runs/ [more/ ...] --output_dir analysis/summary [--epsilon 0.005] [--no_plots]

Searches the folders recursively for imp_results.json and finetune_results.json, prints compact tables and writes
results_summary.json, imp_curves.csv, imp_tickets.csv, transfer.csv, transfer_mean_relative_drop.csv,
zero_shot.csv and PNG figures (imp_curves_<task>.png, transfer_<task>_<sparsity>.png, zero_shot_<task>.png).
"""
from utils.infra.args import parse_args
from utils.infra.errors import exit_on_user_error
from utils.analysis.results import Summary
from utils.analysis.tools import SummaryArguments, run_summary


@exit_on_user_error
def main(argv=None) -> Summary:
    (args,) = parse_args((SummaryArguments,), argv)
    return run_summary(args)


if __name__ == "__main__":
    main()

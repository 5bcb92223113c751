"""Mask algebra: intersection, union, majority vote or difference of tickets, optionally re-pruned to a sparsity.

    python mask_ops.py --operation intersection --masks runs/ner_en/masks/sparsity_50.pt \
        runs/ner_fr/masks/sparsity_50.pt --output masks/consensus_en_fr.pt [--sparsity 50] [--checkpoint MODEL]
    python mask_ops.py --operation majority --masks en.pt fr.pt es.pt [--min_count 2] --output majority.pt
    python mask_ops.py --operation difference --masks en.pt fr.pt --output en_not_fr.pt

Writes an ordinary mask file (and its .json metadata naming the sources and the operation) that every fine-tuning
script takes as --mask_dir.
"""
from utils.infra.args import parse_args
from utils.infra.errors import exit_on_user_error
from utils.analysis.mask_ops import MaskOpsArguments, run_mask_ops


@exit_on_user_error
def main(argv=None) -> dict:
    (args,) = parse_args((MaskOpsArguments,), argv)
    return run_mask_ops(args)


if __name__ == "__main__":
    main()

"""Whole-model calibration: exists for comparison only (benchmarks/oneshot_bench.py); prune_oneshot.py calibrates
block by block (utils.oneshot.run.prune_model).

This is what a naive implementation does: per sample, one forward pass of the DENSE model with hooks on every
prunable matrix of every block at once; every matrix's statistics are held together (SparseGPT: one Hessian per
matrix, all layers at once), then every matrix is pruned from the dense model's inputs. Later blocks never see the
pruned earlier blocks' outputs, so Wanda's and SparseGPT's masks differ from the sequential ones after the first
block of each stack (magnitude needs no inputs and gives the same mask). The whole model sits on run.device
(no --offload).
"""
from __future__ import annotations

import torch

from utils.oneshot.blocks import input_hooks, layer_inputs
from utils.oneshot.methods import NEEDS_CALIBRATION, LayerPruner
from utils.oneshot.run import PruneRun, model_inputs


class _PastLastBlock(Exception):
    """Raised after the last block ran: the head's output is not needed for the statistics."""


def _stop(_module, _args, _output) -> None:
    raise _PastLastBlock


@torch.no_grad()
def prune_model_whole(model, run: PruneRun) -> dict[str, torch.Tensor]:
    """Gather every matrix's statistics in one pass over the samples through the dense model, then prune every
    matrix; returns the masks by parameter name (the weights are zeroed in place, SparseGPT's kept ones updated)."""
    blocks = run.all_blocks
    layers = {name: entry for block in blocks for name, entry in layer_inputs(model, block).items()}
    pruners = {name: LayerPruner(model.get_parameter(name), transposed, run.settings)
               for name, (_module, transposed) in layers.items()}
    if NEEDS_CALIBRATION[run.settings.method]:
        handles = input_hooks(layers, lambda name, x: pruners[name].add(x))
        handles.append(blocks[-1].module.register_forward_hook(_stop))
        try:
            for row in run.samples:
                try:
                    model(**model_inputs(model.config, row.unsqueeze(0).to(run.device)))
                except _PastLastBlock:
                    pass
        finally:
            for handle in handles:
                handle.remove()
    return {name: pruner.prune() for name, pruner in pruners.items()}

"""The one place that knows where a run's files go, and the rules that keep earlier results safe.

What a run may do with its --output_dir (see `plan_run`):
- a COMPLETE run there (imp_results.json marked complete, or finetune_results.json) is never removed, whatever
  the flags: the same settings report it ("nothing to do"), other settings are refused;
- an unfinished IMP run with the same settings is continued (completed rounds kept);
- an unfinished run with other settings, or this project's files without a results file (a run killed before it
  wrote one), is removed only with --discard_unfinished_run, whose message names what it removes; never when the
  new run reads one of those files (its mask, data or model);
- --overwrite_output_dir is accepted for the original commands and removes nothing.
Before any training the folder must be creatable and writable and the disk must hold the run's files.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from utils.infra.errors import UserError
from utils.infra.io import remove_stale_temp_files
from utils.infra.results_schema import read_results

IMP_RESULTS = "imp_results.json"
FINETUNE_RESULTS = "finetune_results.json"
STUDY_RUN_RECORD = "study_run.json"  # what study.py writes into each run folder it launches (utils/study/state.py)
ONESHOT_RESULTS = "oneshot_results.json"
DISCARD_FLAG = "--discard_unfinished_run"
CLEAR_ANALYSIS_FLAG = "--clear_output_dir"


class RunPaths:
    def __init__(self, output_dir: str | Path) -> None:
        self.root = Path(output_dir)

    @property
    def imp_results(self) -> Path:
        return self.root / IMP_RESULTS

    @property
    def finetune_results(self) -> Path:
        return self.root / FINETUNE_RESULTS

    @property
    def oneshot_results(self) -> Path:
        return self.root / ONESHOT_RESULTS

    @property
    def masks_dir(self) -> Path:
        return self.root / "masks"

    def mask_file(self, sparsity: float) -> Path:
        """masks/sparsity_50.pt (and sparsity_27.1.pt for geometric schedules)."""
        return self.masks_dir / f"sparsity_{format(round(100 * sparsity, 4), 'g')}.pt"

    @property
    def rewind_weights(self) -> Path:
        """The weights every IMP round rewinds to; kept until the run completes, so it can resume."""
        return self.root / "rewind_weights.pt"

    def carried_weights(self, round_index: int) -> Path:
        """The task head after a round, which the next round starts from (--rewind_scope body); for resuming."""
        return self.root / f"carried_weights_round_{round_index}.pt"

    def resume_files(self) -> list[Path]:
        """Files an unfinished IMP run needs to resume, removed once it completes."""
        return [self.rewind_weights, *sorted(self.root.glob("carried_weights_round_*.pt"))]

    def clear_resume_files(self) -> None:
        for path in self.resume_files():
            path.unlink(missing_ok=True)

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def tracking_dir(self) -> Path:
        """Where --report_to tensorboard writes unless --logging_dir says otherwise."""
        return self.root / "runs"

    @property
    def run_markers(self) -> list[Path]:
        """Files whose presence makes a folder a run's folder: its results, its rewind snapshot, a study's record."""
        return [self.imp_results, self.finetune_results, self.oneshot_results, self.rewind_weights,
                self.root / STUDY_RUN_RECORD]

    def result_entries(self) -> list[Path]:
        """Files and folders this project writes into an output directory."""
        candidates = [self.imp_results, self.finetune_results, self.oneshot_results, self.masks_dir,
                      *self.resume_files(), self.model_dir, self.tracking_dir]
        return [p for p in candidates if p.exists()]

    def remove_stale_temp_files(self) -> list[Path]:
        """Temporary files of writes a kill interrupted (see utils.infra.io.atomic_write)."""
        return remove_stale_temp_files(self.root, self.masks_dir, self.model_dir)


# Honoured settings that say where a run is kept, how it is logged or how fast its input is prepared, not what it
# computes: a re-run that differs only here is the same run (it resumes, or reports the complete run).
NOT_RESULT_SETTINGS = frozenset({
    # where the run is kept, and which process is which
    "output_dir", "overwrite_output_dir", "discard_unfinished_run", "resume", "logging_dir", "run_name", "cache_dir",
    "mask_format", "local_rank", "model_type",
    # logging and tracking
    "logging_steps", "logging_first_step", "log_level", "log_level_replica", "disable_tqdm", "report_to",
    # speed of input preparation only (numerics-changing speed flags such as tf32 or torch_compile still count)
    "dataloader_num_workers", "dataloader_pin_memory", "dataloader_persistent_workers", "dataloader_prefetch_factor",
    "preprocessing_num_workers", "overwrite_cache",
})


def run_fingerprint(*argument_groups: Any, ignore: Iterable[str] = ()) -> dict[str, Any]:
    """The settings that decide a run's results; two runs are the same run when their fingerprints are equal.

    One rule for IMP and fine-tuning: every setting the scripts honour (their own argument classes, and the
    TrainingArguments fields in utils.infra.flags.HONOURED) except NOT_RESULT_SETTINGS and `ignore` (IMP: the
    evaluation-only fields). Forgetting to list a setting here errs on the loud side (a refusal naming it), and the
    TrainingArguments fields the scripts refuse stay out, so a transformers upgrade does not change fingerprints."""
    from utils.infra.args import config_dict  # lazily: args imports transformers, which study.py's planner avoids
    from utils.infra.flags import refused_fields

    skip = NOT_RESULT_SETTINGS | refused_fields() | set(ignore)
    return {k: v for k, v in config_dict(*argument_groups).items() if k not in skip}


def _differences(previous: dict, fingerprint: dict[str, Any]) -> list[str]:
    if previous.get("fingerprint") is None:  # written by an earlier version: nothing to compare, so never the same run
        return ["settings not recorded (written by an earlier version)"]
    return config_differences(previous["fingerprint"], fingerprint)


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


# ---------------------------------------------------------------------------------------------------------------
# Before a run starts
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class OutputPlan:
    """What a run does with its output directory."""

    previous: Optional[dict] = None  # the results already there of a run with the same settings
    clear: list[Path] = field(default_factory=list)  # an unfinished run's entries, removed once the run has loaded

    @property
    def finished(self) -> bool:
        """The same run is already complete: nothing to do."""
        return self.previous is not None and self.previous.get("complete", True)


def plan_run(paths: RunPaths, kind: str, fingerprint: dict[str, Any], *, resume: bool = False,
             discard: bool = False, inputs: Iterable[Path] = ()) -> OutputPlan:
    """Decide, before anything is loaded, whether an `kind` ('imp', 'finetune' or 'oneshot') run may use paths.root."""
    check_output_location(paths)
    enclosing = enclosing_run(paths.root)
    if enclosing is not None:  # e.g. the IMP run's masks/: its --discard_unfinished_run would delete this run
        raise UserError(f"--output_dir {paths.root} is inside the folder of another run, {enclosing.parent} (it holds "
                        f"{enclosing.name}): choose a folder outside it")
    inputs = list(inputs)
    for results_file, run_kind, name in ((paths.finetune_results, "finetune", "fine-tuning"),
                                         (paths.oneshot_results, "oneshot", "one-shot pruning"),
                                         (paths.imp_results, "imp", "IMP")):
        if not results_file.exists():
            continue
        previous = read_results(results_file)
        differences = _differences(previous, fingerprint)
        if kind == run_kind and not differences:
            return OutputPlan(previous=previous)
        other = f" with other settings ({'; '.join(differences[:5])})" if kind == run_kind else ""
        if previous.get("complete", True):  # fine-tuning results are written once, when the run is complete
            raise UserError(f"{paths.root} holds a complete {name} run{other}; it is never removed: "
                            "choose another --output_dir")
        if resume:
            raise UserError(f"cannot resume {paths.root}: it was run with other settings ({'; '.join(differences[:5])})")
        rounds = len(previous.get("rounds", []))
        return OutputPlan(clear=_discardable(paths, f"an unfinished {name} run ({rounds} round(s) done){other}",
                                             discard, inputs))
    if resume:
        raise UserError(f"--resume: {paths.root} holds no IMP run to resume")
    if paths.result_entries():
        return OutputPlan(clear=_discardable(paths, "files of a run that wrote no results file", discard, inputs))
    return OutputPlan()


def _discardable(paths: RunPaths, what: str, discard: bool, inputs: Sequence[Path]) -> list[Path]:
    """The entries of an unfinished run, if the user said to discard them and the new run reads none of them."""
    entries = paths.result_entries()
    names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in entries)
    nested = next((marker for entry in entries if entry.is_dir() for marker in runs_inside(entry)), None)
    if nested is not None:  # e.g. --output_dir . whose runs/ holds every experiment: never offer to delete it
        raise UserError(f"{paths.root} holds other runs' folders (in {nested.relative_to(paths.root).parts[0]}/: "
                        f"{nested}): choose another --output_dir")
    if not discard:
        raise UserError(f"{paths.root} holds {what}; pass {DISCARD_FLAG} to delete it ({names}), "
                        "or choose another --output_dir")
    for source in inputs:
        if any(_inside(source, entry) for entry in entries):
            raise UserError(f"{paths.root} holds {what}, but {DISCARD_FLAG} would delete {source}, which this run "
                            "reads: choose another --output_dir")
    return entries


def clear_entries(paths: RunPaths, entries: Sequence[Path]) -> None:
    """Remove an unfinished run's files (only files this project writes; never anything else there)."""
    for entry in entries:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
    print(f"removed the unfinished run in {paths.root} ({', '.join(p.name for p in entries)})", flush=True)


def enclosing_run(root: Path) -> Optional[Path]:
    """The marker file (results, rewind snapshot, study record) of the nearest run folder above `root`, if any."""
    for parent in Path(os.path.realpath(root)).parents:
        marker = next((m for m in RunPaths(parent).run_markers if os.path.isfile(m)), None)
        if marker is not None:
            return marker
    return None


def runs_inside(folder: Path) -> list[Path]:
    """The marker files of run folders anywhere below `folder`."""
    names = {marker.name for marker in RunPaths(folder).run_markers}
    return sorted(path for path in folder.rglob("*") if path.name in names and path.is_file())


def _inside(path: Path, entry: Path) -> bool:
    path, entry = Path(os.path.realpath(path)), Path(os.path.realpath(entry))
    return path == entry or entry in path.parents


def run_inputs(model_args, data_args, mask_path: Optional[str] = None) -> list[Path]:
    """The local files and folders a run reads: its mask (and metadata), data files and model folders."""
    from utils.infra.data import data_file

    found: list[Path] = []
    if mask_path:
        found += [Path(mask_path), Path(mask_path).with_suffix(".json")]
    languages = data_args.languages + data_args.extra_eval_languages
    for template in (data_args.train_file, data_args.validation_file, data_args.test_file):
        found += [Path(data_file(template, lang)) for lang in languages if template]
    for name in (model_args.model_name_or_path, model_args.config_name, model_args.tokenizer_name):
        if name and os.path.exists(name):
            found.append(Path(name))
    return [p for p in dict.fromkeys(found) if p.exists()]


def check_output_location(paths: RunPaths) -> None:
    """--output_dir must be a folder (or creatable as one) that this user can write, and its entries the right kind."""
    root = paths.root
    if not str(root).strip():
        raise UserError("--output_dir is empty")
    if root.exists() and not root.is_dir():
        raise UserError(f"--output_dir {root} is an existing file, not a folder")
    base = existing_ancestor(root)
    if not base.is_dir():
        raise UserError(f"--output_dir {root} cannot be created: {base} is a file")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UserError(f"--output_dir {root} is not writable ({base} does not allow this user to write)")
    for folder in (paths.masks_dir, paths.model_dir):
        if folder.exists() and not folder.is_dir():
            raise UserError(f"{folder} is a file where this run writes a folder: move it away")
    for file in (paths.imp_results, paths.finetune_results, paths.oneshot_results, paths.rewind_weights):
        if file.is_dir():
            raise UserError(f"{file} is a folder where this run writes a file: move it away")


def existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_free_space(root: Path, needed: int, what: str) -> None:
    """Stop before training when the disk cannot hold what the run will write (with 10% and 16 MiB to spare)."""
    free = shutil.disk_usage(existing_ancestor(root)).free
    if free < needed * 1.1 + (16 << 20):
        raise UserError(f"not enough free disk for {root}: {what} need about {_size(needed)}, {_size(free)} free; "
                        "free some space or choose another --output_dir")


def mask_file_bytes(weights: dict, packed: bool) -> int:
    """About how large one saved mask (and its metadata) is: 1 byte per weight, or 1 bit packed, plus per-entry
    overhead of the archive (torch.save aligns each record to 64 bytes) and the JSON beside it."""
    payload = sum((w.numel() + 7) // 8 if packed else w.numel() for w in weights.values())
    return payload + 1024 * len(weights) + (64 << 10)


def _size(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


# ---------------------------------------------------------------------------------------------------------------
# The analysis tools' output folders
# ---------------------------------------------------------------------------------------------------------------

ANALYSIS_OUTPUTS = {
    "mask_similarity": ("mask_similarity.json", "mask_similarity_pairs.csv", "mask_overlap.csv", "jaccard_matrix.csv",
                        "jaccard_heatmap.png", "jaccard_per_layer.png", "head_similarity.json", "head_jaccard.csv",
                        "language_specific.csv", "head_jaccard_*.png", "language_specific_per_*.png"),
    "summary": ("results_summary.json", "imp_curves.csv", "imp_tickets.csv", "transfer.csv",
                "transfer_mean_relative_drop.csv", "zero_shot.csv", "imp_curves_*.png", "transfer_*.png",
                "zero_shot_*.png"),
    "retrieval": ("retrieval_*.json", "retrieval_*.png"),
    "representation_similarity": ("representations_*.json", "representations_*.csv", "representations_*.png"),
    "neurons": ("neurons.json", "lape_neurons.pt", "activation_probs.pt", "ablation_*.csv", "neuron_overlap.csv",
                "masks/neurons_*.pt", "masks/neurons_*.json", "masks/without_*.pt", "masks/without_*.json"),
    "mask_perplexity": ("mask_perplexity.json",),
}


def prepare_analysis_dir(output_dir: str | Path, kind: str, clear: bool) -> Path:
    """Check an analysis tool's --output_dir before any work; refuse one holding another analysis' outputs, or
    delete those (only those) with --clear_output_dir."""
    paths = RunPaths(output_dir)
    check_output_location(paths)
    root = paths.root
    others = sorted({p for name, patterns in ANALYSIS_OUTPUTS.items() if name != kind
                     for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    if others and not clear:
        shown = ", ".join(p.name for p in others[:3]) + (", ..." if len(others) > 3 else "")
        raise UserError(f"{root} holds another analysis' outputs ({shown}); choose another --output_dir, or pass "
                        f"{CLEAR_ANALYSIS_FLAG} to delete them")
    for path in others:
        path.unlink()
    remove_stale_temp_files(root)
    return root


def remove_unwritten(root: Path, patterns: Sequence[str], written: Sequence[Path]) -> None:
    """After an analysis wrote its files, delete its earlier ones this run did not rewrite (a figure of another
    run must not stay beside the new JSON)."""
    keep = {Path(p).resolve() for p in written}
    for path in {p for pattern in patterns for p in root.glob(pattern) if p.is_file()}:
        if path.resolve() not in keep:
            path.unlink()

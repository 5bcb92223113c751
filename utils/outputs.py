"""The one place that knows where a run's files go, and the rules that keep earlier results safe."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Optional

from .errors import UserError
from .io import read_json

IMP_RESULTS = "imp_results.json"
FINETUNE_RESULTS = "finetune_results.json"


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

    def result_entries(self) -> list[Path]:
        """Files and folders this project writes into an output directory."""
        candidates = [self.imp_results, self.finetune_results, self.masks_dir, *self.resume_files(), self.model_dir,
                      self.tracking_dir]
        return [p for p in candidates if p.exists()]

    def clear_results(self) -> None:
        """Remove an earlier run's results (only files this project writes; never anything else there)."""
        for entry in self.result_entries():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        for stale in self.masks_dir.parent.glob(".*.tmp"):
            stale.unlink()


def read_results(path: Path) -> dict:
    try:
        data = read_json(path)
    except (ValueError, OSError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict) or "config" not in data:
        raise UserError(f"{path} is not a results file of this project")
    return data


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def guard_output_dir(paths: RunPaths, overwrite: bool) -> None:
    """Refuse to run into a directory that holds another run's results, unless told to replace them."""
    existing = paths.result_entries()
    if existing and not overwrite:
        names = ", ".join(p.name for p in existing)
        raise UserError(
            f"{paths.root} already holds results ({names}); pass --overwrite_output_dir to replace them"
        )


def imp_resume_state(paths: RunPaths, fingerprint: dict[str, Any], overwrite: bool, resume: bool) -> Optional[dict]:
    """The earlier IMP results to continue from, or None for a fresh run (after checking it may start)."""
    if not paths.imp_results.exists():
        if resume:
            raise UserError(f"--resume: {paths.root} holds no IMP run to resume")
        guard_output_dir(paths, overwrite)
        return None
    previous = read_results(paths.imp_results)
    differences = config_differences(previous.get("fingerprint", {}), fingerprint)
    if resume or (not overwrite and not previous.get("complete") and not differences):
        if differences:
            raise UserError(
                f"cannot resume {paths.root}: it was run with other settings ({'; '.join(differences[:5])})"
            )
        return previous
    guard_output_dir(paths, overwrite)
    return None

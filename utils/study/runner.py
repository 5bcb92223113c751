"""study.py's work: read the plan, print it (--dry_run) or run what is not done, then write the report."""
from __future__ import annotations

import argparse
import os
import shlex
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

from utils.infra.errors import UserError
from utils.infra.io import write_json
from .checks import check_study
from .cost import (DEFAULT_GPU, DEFAULT_UTILIZATION, GPU_PEAK_TFLOPS, SpeedFile, kind_costs, study_costs,
                   study_packing)
from .execute import Outcome, execute, make_executor
from .lock import StudyLock
from utils.analysis.writers import text_table
from .plan import ANALYSIS_KINDS, TRAINING_KINDS, Run, Study, load_study, steps_per_second
from .state import Decision, decide

KINDS = TRAINING_KINDS + ("oneshot",) + ANALYSIS_KINDS
STATE_FILE = "study_state.json"


@dataclass
class StudyArguments:
    """study.py's arguments."""

    study: str
    dry_run: bool = False
    restart: list[str] = field(default_factory=list)
    speeds: Optional[str] = None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not the usage
        raise UserError(message)


def parse_study_args(argv: Optional[Sequence[str]] = None) -> StudyArguments:
    parser = _Parser(prog="study.py", allow_abbrev=False,
                     description="Run (or --dry_run) every run of a study file; resumable; ends with a report.")
    parser.add_argument("study", help="the study file (JSON), e.g. configs/studies/offline.json")
    parser.add_argument("--dry_run", action="store_true", help="print every run, counts and a GPU-hour estimate")
    parser.add_argument("--restart", nargs="+", default=[], metavar="RUN_GLOB",
                        help="run ids or globs ('imp/ner/*') to delete and start again, with their dependents")
    parser.add_argument("--speeds", metavar="FILE", help="measured speeds (benchmarks/results/<gpu>.json) for the dry "
                        "run's estimate; overrides the study file's 'speeds'")
    return StudyArguments(**vars(parser.parse_args(argv)))


def command_line(run: Run, max_items: Optional[int] = None) -> str:
    """The run as a command with flags (equivalent to the config.json the study writes into its directory); lists
    longer than `max_items` (the summary's hundreds of run folders) are cut short for reading."""
    parts = ["python", run.script]
    for key, value in run.config.items():
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        shown = values if max_items is None or len(values) <= max_items else values[:max_items]
        parts += [f"--{key}", *(("true" if v else "false") if isinstance(v, bool) else str(v) for v in shown)]
        if len(shown) < len(values):
            parts.append("...")  # the whole list is in RUN_DIR/config.json
    return " ".join(shlex.quote(p) for p in parts)


def estimate_rows(study: Study, decisions: dict[str, Decision]) -> tuple[list[list[str]], list[str]]:
    """Runs, runs to do, optimizer steps and GPU-hours per kind; and the assumed speeds with their sources."""
    rows, sources = [], {}
    for kind in KINDS:
        runs = [r for r in study.runs.values() if r.kind == kind]
        if not runs:
            continue
        todo = sum(decisions[r.id].action != "skip" for r in runs)
        steps = sum(r.steps or 0 for r in runs)
        hours = 0.0
        for run in runs:
            rate, source = steps_per_second(study, run)
            if rate:
                hours += (run.steps or 0) / rate / 3600
                phase = "IMP" if run.is_imp else "fine-tuning"
                sources[f"{phase} {run.task_kind}"] = f"{rate:.2f} steps/s ({source})"
        measured = study.raw.get("oneshot", {}).get("seconds_per_run", {}).get(kind)
        cpu = f"{todo * measured / 60:,.1f} CPU-min (measured)" if measured else "- (CPU, minutes)"
        rows.append([kind, str(len(runs)), str(todo), f"{steps:,}" if steps else "-",
                     f"{hours:,.1f}" if steps else cpu])
    notes = [f"  {name}: {text}" for name, text in sources.items()]
    return rows, notes


def local_workers(study: Study) -> int:
    """How many runs the local executor runs at a time (1 for a cluster: its queue decides)."""
    if study.executor.get("kind", "local") != "local":
        return 1
    from .execute import LocalExecutor

    return LocalExecutor.from_study(study).workers


def print_plan(study: Study, decisions: dict[str, Decision]) -> None:
    for run in study.runs.values():
        decision = decisions[run.id]
        print(f"[{decision.action}] {run.id}  ({decision.reason})")
        print(f"  {command_line(run, max_items=4)}")
        print(f"  output: {run.run_dir}")
        if run.soft_deps:
            print(f"  after: all {len(run.deps)} training runs (whatever their outcome)")
        elif run.deps:
            print(f"  after: {', '.join(run.deps)}")
    rows, notes = estimate_rows(study, decisions)
    total = sum(float(r[4].replace(",", "")) for r in rows if r[3] != "-")
    print(f"\nstudy {study.name}: {len(study.runs)} runs in {study.study_dir}")
    print(text_table(["kind", "runs", "to run", "optimizer steps", "GPU-hours (est.)"], rows))
    if notes:
        print(f"total: {total:,.1f} GPU-hours of training, at these assumed speeds (evaluation included, as in the "
              "paper's figures, which were measured on a Quadro RTX 8000):")
        print("\n".join(notes))
    measured = study.raw.get("oneshot", {}).get("seconds_per_run", {})
    if measured:
        todo = {kind: sum(decisions[r.id].action != "skip" for r in study.runs.values() if r.kind == kind)
                for kind in measured}
        workers = local_workers(study)  # runs at a time (the seconds were measured so)
        minutes = sum(todo[k] * measured[k] for k in measured) / 60 / workers
        print(f"one-shot stage: about {minutes:.1f} minutes still to run on this machine with {workers} run(s) at a "
              f"time, from the study file's measured seconds per run ({study.path}: oneshot.seconds_per_run)")


def print_costs(study: Study, speeds_flag: Optional[str]) -> None:
    """The dry run's cost lines: packing and peak memory, the FLOP bound per kind, and the measured-speed estimate
    beside the paper-speed one when a speeds file is given (flag, else the study's 'speeds')."""
    costs = study_costs(study)
    if not costs:
        return
    packing = study_packing(study, costs)
    bound = study.raw.get("flop_bound", {})
    gpu, utilization = bound.get("gpu", DEFAULT_GPU), float(bound.get("utilization", DEFAULT_UTILIZATION))
    path = speeds_flag or study.raw.get("speeds")
    speeds = SpeedFile.read(path) if path else None
    paper = {row[0]: row[4] for row in estimate_rows(study, {rid: Decision("run", "") for rid in study.runs})[0]}
    kinds = kind_costs(study, costs, gpu, utilization, speeds, packing.runs_per_gpu)
    rows = [[k.kind, str(k.runs), "-" if k.flops is None else f"{k.flops / 1e18:,.2f}",
             "-" if k.bound_hours is None else f"{k.bound_hours:,.1f}", paper.get(k.kind, "-")]
            + ([] if speeds is None else ["-" if k.measured_hours is None else f"{k.measured_hours:,.1f}"])
            for k in kinds]
    if all(k.bound_hours is not None for k in kinds):
        rows.append(["total", str(sum(k.runs for k in kinds)), f"{sum(k.flops for k in kinds) / 1e18:,.2f}",
                     f"{sum(k.bound_hours for k in kinds):,.1f}", _column_total(rows, 4)]
                    + ([] if speeds is None else [_column_total(rows, 5)]))
    header = ["kind", "training runs", "EFLOP", f"FLOP bound GPU-h ({gpu}, {utilization:.0%})", "paper-speed GPU-h"]
    print(f"\npacking: {packing.note}")
    print(text_table(header + ([f"measured GPU-h ({speeds.gpu})"] if speeds else []), rows))
    sizes = {c.size.name: c.size for c in costs if c.size is not None}
    unknown = sorted({str(study.runs[c.run_id].config.get("model_name_or_path")) for c in costs if c.size is None})
    print(f"FLOP bound: 6 x parameters x training tokens + 2 x parameters x evaluation tokens, at {utilization:.0%} "
          f"of the {gpu}'s {GPU_PEAK_TFLOPS[gpu]:g} TFLOP/s peak dense bf16; no run can be faster. Parameters "
          "(without embedding tables) of all: " + "; ".join(f"{s.name} {s.matmul:,} of {s.total:,} ({s.source})"
                                                            for s in sizes.values())
          + (f"; unknown size (not local, not in the known table): {', '.join(unknown)}" if unknown else ""))
    tokens = {f"{c.workload}: {c.tokens_per_example:.1f} tokens/example ({c.token_source})" for c in costs}
    print("\n".join(f"  {t}" for t in sorted(tokens)))
    if speeds is None:
        print("measured speeds: none given (--speeds benchmarks/results/<gpu>.json from bash benchmarks/gpu.sh); "
              "only paper speeds are known")
    else:
        print(f"measured speeds: {path} ({speeds.gpu}, {speeds.date}, {speeds.settings.get('models', 'models ?')}) "
              f"at {packing.runs_per_gpu} run(s) per GPU: "
              "each run's steps/s measured with that many concurrent runs (or the nearest fewer measured), its "
              f"hours divided by the runs sharing the GPU; '-' where a workload was not measured")


def _column_total(rows: list[list[str]], column: int) -> str:
    """The sum of a column of printed numbers, or '-' when one of them is not a number."""
    try:
        return f"{sum(float(row[column].replace(',', '')) for row in rows):,.1f}"
    except ValueError:
        return "-"


def print_outcomes(study: Study, outcomes: dict[str, Outcome], seconds: float) -> None:
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("ok", "complete", "failed", "skipped")}
    print(f"\nstudy {study.name}: {counts['ok']} run(s) done now, {counts['complete']} already complete, "
          f"{counts['failed']} failed, {counts['skipped']} skipped ({seconds:.0f} s)")
    for outcome in outcomes.values():
        if outcome.status == "failed":
            print(f"FAILED  {outcome.id}: {outcome.detail}\n        log: {outcome.log}")
    for outcome in outcomes.values():
        if outcome.status == "skipped":
            print(f"skipped {outcome.id}: {outcome.detail}")


def run_study(args: StudyArguments) -> int:
    """Exit status: 0 when every run is complete, 1 when some failed or were skipped (2: a UserError)."""
    study = load_study(args.study)
    missing = check_study(study, defer_missing_inputs=args.dry_run)  # before anything runs
    if args.dry_run:  # no lock, nothing written
        if args.speeds:
            SpeedFile.read(args.speeds)  # a bad file stops before the plan is printed
        print_plan(study, decide(study, args.restart))
        print_costs(study, args.speeds)
        if missing:
            more = f" (and {len(missing) - 1} more run(s) with missing inputs)" if len(missing) > 1 else ""
            print(f"not ready to run: {missing[0]}{more}")
        return 0
    with StudyLock(study.study_dir):
        return _run(study, decide(study, args.restart))


def _run(study: Study, decisions: dict[str, Decision]) -> int:
    """Run what the decisions say (under the study's lock), then write the state file and the report."""
    from .report import key_tables, write_report  # matplotlib only when a study runs

    packing = study_packing(study, study_costs(study))
    if packing.runs_per_gpu < packing.requested:
        print(f"note: {packing.note}", flush=True)
    executor = make_executor(study, packing.runs_per_gpu)
    todo = sum(d.action != "skip" for d in decisions.values())
    print(f"study {study.name}: {len(study.runs)} runs, {todo} to run; {executor.describe()}", flush=True)
    started = time.time()
    try:
        outcomes = execute(study, decisions, executor, os.getcwd(), study.executor.get("poll_seconds", 0.5),
                           study.executor.get("gpus_per_run", 1))
    except KeyboardInterrupt:
        print(f"\nstudy {study.name} interrupted (its runs were stopped); run the same command to continue")
        return 130
    ordered = {rid: outcomes[rid] for rid in study.runs}
    write_json(study.study_dir / STATE_FILE, {"study": study.path, "runs": [o.as_dict() for o in ordered.values()]})
    print_outcomes(study, ordered, time.time() - started)
    sections = write_report(study, ordered)
    tables = key_tables(sections)
    print(f"\n{tables}\n" if tables else "")
    print(f"report: {study.study_dir / 'report.md'} (tables as CSV in tables/, figures in figures/, report.html)")
    return 0 if all(o.status in ("ok", "complete") for o in ordered.values()) else 1

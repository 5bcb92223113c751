"""Running a study's runs: a scheduler over two executors, local processes and submitit (Slurm or its local mode).

The scheduler keeps the study runner alive and hands out runs as their dependencies finish: every run whose
inputs are complete goes out at once (on Slurm, one job array per batch via submitit's executor.batch()), so a
fine-tuning run starts as soon as the one IMP run it reads is done, not after the whole IMP stage. This needs no
Slurm dependency bookkeeping, behaves the same on the local executor and in the tests, and a killed runner loses
nothing: each run's state lives in its directory, so running the study again skips, resumes or re-runs.

Every run is `python SCRIPT RUN_DIR/config.json [--resume]` in the directory study.py was started from, its
stdout and stderr appended to RUN_DIR/run.log. On CPU the local executor forks the runner (which has imported the
scripts' modules once) instead of starting a new interpreter, saving the ~8 s import of torch and transformers per
run; with GPUs it starts a fresh process per run with its own CUDA_VISIBLE_DEVICES.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol, runtime_checkable

from utils.infra.errors import UserError, first_line
from utils.infra.io import write_json
from utils.infra.outputs import RunPaths, clear_entries
from .paths import check_inside
from .plan import Run, Study
from .state import CONFIG, LOG, RECORD, Decision, is_complete, last_line, record


REPO = Path(__file__).resolve().parents[2]  # the scripts' folder; runs start in the directory study.py ran from


@dataclass
class Outcome:
    id: str
    status: str  # ok, failed, skipped, complete (already, not run now)
    detail: str = ""
    log: Optional[str] = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(vars(self))


def job_for(run: Run, resume: bool, cwd: str, gpus_per_run: int = 1) -> dict[str, Any]:
    """What a worker needs to run one run (plain data: it is pickled for submitit).

    Training runs on several GPUs go through torchrun, as the scripts are run by hand (one process per GPU)."""
    argv = [str(REPO / run.script), str(run.run_dir / CONFIG)] + (["--resume"] if resume else [])
    if gpus_per_run > 1 and run.task_kind is not None:
        argv = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus_per_run}", *argv]
    return {"id": run.id, "cwd": cwd, "argv": argv, "log": str(run.run_dir / LOG)}


def _header(job: dict, env: dict) -> str:
    devices = env.get("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", "-"))
    return (f"\n=== study run {job['id']} | {time.strftime('%Y-%m-%d %H:%M:%S')} | CUDA_VISIBLE_DEVICES={devices} "
            f"| python {' '.join(job['argv'])}\n")


def start_job(job: dict[str, Any], env: Optional[dict] = None) -> subprocess.Popen:
    """Start one script in a new interpreter, its output appended to the run's log."""
    env = {**os.environ, **(env or {})}
    with open(job["log"], "a", encoding="utf-8") as log:
        log.write(_header(job, env))
        log.flush()
        return subprocess.Popen([sys.executable, "-u", *job["argv"]], cwd=job["cwd"], stdout=log,  # noqa: S603
                                stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)


@dataclass(frozen=True)
class Finished:
    """A run an executor saw end: its script's exit code, or None with `error` when the job died before the script
    could report (a Slurm timeout, preemption, a lost node)."""

    id: str
    returncode: Optional[int]
    seconds: float
    error: str = ""


def run_jobs(jobs: list[dict[str, Any]], env: Optional[dict] = None) -> list[Finished]:
    """What a submitit job calls (the results are pickled back to the runner): its runs at once (sharing its GPU
    when runs_per_gpu > 1), each in its own process with its own log and exit code. A run that cannot start or dies
    leaves its neighbours running; a job of one run that cannot start dies, and the runner reports the job."""
    started, processes, finished = time.time(), {}, []
    for job in jobs:
        try:
            processes[job["id"]] = start_job(job, env)
        except OSError as error:
            if len(jobs) == 1:
                raise
            finished.append(Finished(job["id"], None, 0.0, f"could not start: {first_line(error)}"))
    for run_id, process in processes.items():
        finished.append(Finished(run_id, process.wait(), time.time() - started))
    return finished


def _die_with_parent() -> None:
    """Linux: a run ends when whoever started it is killed, so a killed study leaves no orphan writing results."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _forked_child(job: dict, env: dict) -> None:
    """In a forked copy of the runner: become the script (as `python SCRIPT ARGS` would) and exit with its code."""
    import runpy
    import traceback

    code = 1
    try:
        _die_with_parent()
        os.environ.update(env)
        if "OMP_NUM_THREADS" in env and "torch" in sys.modules:  # imported before the fork: size its pool now
            sys.modules["torch"].set_num_threads(int(env["OMP_NUM_THREADS"]))
        os.chdir(job["cwd"])
        fd = os.open(job["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, _header(job, env).encode())
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)
        sys.argv = list(job["argv"])
        try:
            runpy.run_path(job["argv"][0], run_name="__main__")
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:  # noqa: BLE001 - the child must report and exit, whatever happened
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


# ---------------------------------------------------------------------------------------------------------------
# Executors: what the scheduler needs from a place that runs jobs
# ---------------------------------------------------------------------------------------------------------------


@runtime_checkable
class Executor(Protocol):
    """Local processes and submitit (Slurm or its local mode) both offer these; `execute` uses nothing else."""

    def describe(self) -> str:
        """One line for the study's header: where runs go and how many at once."""

    def prepare(self, runs: list[Run]) -> None:
        """Once, before the first submit, with every run that may be submitted."""

    def free_slots(self) -> int:
        """How many more runs may be submitted now."""

    def submit(self, runs_and_jobs: list[tuple[Run, dict]]) -> None:
        """Start these runs (each with its `job_for` job) without waiting for them."""

    def poll(self) -> list[Finished]:
        """The runs that ended since the last poll; never blocks."""

    def busy(self) -> bool:
        """Whether any submitted run has not been returned by `poll` yet."""

    def stop(self) -> None:
        """Stop every run still going (the runner was interrupted)."""


def visible_gpus() -> list[str]:
    """GPU ids from CUDA_VISIBLE_DEVICES, else from nvidia-smi; never initialises CUDA in the runner."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is not None:
        return [v.strip() for v in value.split(",") if v.strip() and v.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def usable_cpus() -> int:
    """The cores this process may run on (a Slurm cpuset or taskset, not the whole node)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class LocalExecutor:
    """Up to `runs_per_gpu` runs on each visible GPU at a time (each with its own CUDA_VISIBLE_DEVICES), or
    `workers` at a time on CPU."""

    gpus: list[str]
    workers: int
    launcher: str  # fork or subprocess
    gpus_per_run: int = 1
    runs_per_gpu: int = 1
    threads: Optional[int] = None  # CPU threads per run (several runs at a time on CPU share the cores)
    running: dict[int, tuple[str, list[str], float]] = field(default_factory=dict)  # pid -> id, gpus, start
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)

    @classmethod
    def from_study(cls, study: Study, runs_per_gpu: int = 1) -> "LocalExecutor":
        """runs_per_gpu: the packing after the memory check (cost.study_packing), at most executor.runs_per_gpu."""
        spec = study.executor
        gpus = [str(g) for g in spec["gpus"]] if "gpus" in spec else visible_gpus()
        per_run = int(spec.get("gpus_per_run", 1))
        if per_run < 1 or (gpus and per_run > len(gpus)):
            raise UserError(f"{study.path}: executor.gpus_per_run {per_run} must be in 1..{len(gpus) or 1}")
        workers = len(gpus) // per_run * runs_per_gpu if gpus else int(spec.get("workers", 1))
        if workers < 1:
            raise UserError(f"{study.path}: executor.workers must be >= 1")
        launcher = spec.get("launcher", "auto")
        if launcher == "auto":
            launcher = "subprocess" if gpus else "fork"
        if launcher == "fork" and (not hasattr(os, "fork") or per_run > 1):
            launcher = "subprocess"
        threads = None
        if not gpus and (workers > 1 or "threads_per_run" in spec):  # each run's share of the cores, not all of them
            threads = spec.get("threads_per_run")
            if threads is None and "OMP_NUM_THREADS" not in os.environ:  # the user's own setting stands
                threads = max(1, usable_cpus() // workers)
            if threads is not None and int(threads) < 1:
                raise UserError(f"{study.path}: executor.threads_per_run must be >= 1")
        return cls(gpus, workers, launcher, per_run, runs_per_gpu, None if threads is None else int(threads))

    def describe(self) -> str:
        where = f"GPUs {','.join(self.gpus)}" if self.gpus else "CPU"
        packed = f", up to {self.runs_per_gpu} per GPU" if self.gpus and self.runs_per_gpu > 1 else ""
        threads = f", {self.threads} thread(s) each" if self.threads else ""
        return f"local executor: {self.workers} run(s) at a time on {where}{packed}{threads} ({self.launcher})"

    def prepare(self, runs: list[Run]) -> None:
        """Fork launcher: import each script's modules once here, so every forked run starts without imports."""
        if self.launcher != "fork":
            return
        import importlib

        for script in sorted({run.script for run in runs}):
            importlib.import_module(Path(script).stem)

    def free_slots(self) -> int:
        return self.workers - len(self.running)

    def _place(self) -> list[str]:
        """The least loaded GPUs with room for one more run (gpus_per_run of them; none on CPU)."""
        load = {gpu: 0 for gpu in self.gpus}
        for _, gpus, _ in self.running.values():
            for gpu in gpus:
                load[gpu] += 1
        free = sorted((g for g in self.gpus if load[g] < self.runs_per_gpu), key=lambda g: load[g])
        return free[: self.gpus_per_run]

    def submit(self, runs_and_jobs: list[tuple[Run, dict]]) -> None:
        for run, job in runs_and_jobs:
            gpus = self._place()
            env = {"CUDA_VISIBLE_DEVICES": ",".join(gpus)} if gpus else {}
            if self.threads:
                env.update({"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)})
            if self.launcher == "fork":
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _forked_child(job, env)
            else:
                process = start_job(job, env)
                self.processes[process.pid] = process  # keeps the Popen alive; reaped by waitpid in poll()
                pid = process.pid
            self.running[pid] = (run.id, gpus, time.time())

    def poll(self) -> list[Finished]:
        finished = []
        for pid in list(self.running):
            code = self._exit_code(pid)
            if code is not None:
                run_id, _, started = self.running.pop(pid)
                finished.append(Finished(run_id, code, time.time() - started))
        return finished

    def busy(self) -> bool:
        return bool(self.running)

    def _exit_code(self, pid: int) -> Optional[int]:
        if pid in self.processes:
            code = self.processes[pid].poll()
            if code is not None:
                del self.processes[pid]
            return code
        done, status = os.waitpid(pid, os.WNOHANG)  # a forked run
        return os.waitstatus_to_exitcode(status) if done else None

    def stop(self) -> None:
        for pid in self.running:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in list(self.running):
            while self._exit_code(pid) is None:
                time.sleep(0.1)
        self.running.clear()


@dataclass
class SubmititExecutor:
    """Slurm through submitit (or submitit's local mode): each batch of ready runs is one job array, whose every
    element runs up to `runs_per_gpu` training runs at once on its GPU(s) (analyses: one per element)."""

    executor: Any
    params: dict
    analysis_gpus: int
    folder: Path
    runs_per_gpu: int = 1
    jobs: dict[str, Any] = field(default_factory=dict)  # pack key (its first run id) -> submitit job
    packs: dict[str, list[str]] = field(default_factory=dict)  # pack key -> the run ids the job runs
    submitted: dict[str, float] = field(default_factory=dict)  # pack key -> when it was submitted

    @classmethod
    def from_study(cls, study: Study, runs_per_gpu: int = 1) -> "SubmititExecutor":
        import submitit

        spec = study.executor
        cluster = "local" if spec.get("kind") == "submitit_local" else spec.get("cluster", "slurm")
        # jobs unpickle run_jobs from this package: let them find it wherever they start (sbatch exports the env)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        folder = Path(spec.get("folder", str(study.study_dir / "submitit")))
        try:
            executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=cluster)
        except RuntimeError as error:
            raise UserError(f"{study.path}: executor: {error} (use \"cluster\": \"local\" to test without Slurm)")
        params: dict[str, Any] = {"name": f"study_{study.name}", "timeout_min": spec.get("time_min", 24 * 60),
                                  "gpus_per_node": spec.get("gpus_per_node", spec.get("gpus_per_run", 1) if cluster == "slurm" else 0),
                                  "cpus_per_task": spec.get("cpus_per_task", 4 if cluster == "slurm" else 1)}
        if "mem_gb" in spec:
            params["mem_gb"] = spec["mem_gb"]
        slurm = {"slurm_partition": spec.get("partition"), "slurm_account": spec.get("account"),
                 "slurm_additional_parameters": spec.get("sbatch"),
                 "slurm_array_parallelism": spec.get("array_parallelism")}
        params.update({k: v for k, v in slurm.items() if v is not None})
        executor.update_parameters(**params)
        return cls(executor, params, int(spec.get("analysis_gpus", 0)), folder, runs_per_gpu)

    def describe(self) -> str:
        return (f"submitit executor ({self.executor.cluster}): logs in {self.folder}, "
                f"{', '.join(f'{k}={v}' for k, v in self.params.items())}")

    def prepare(self, runs: list[Run]) -> None:
        return None

    def free_slots(self) -> int:
        return 1 << 30  # the cluster queues; array_parallelism limits what runs at once

    def submit(self, runs_and_jobs: list[tuple[Run, dict]]) -> None:
        training = [(r, j) for r, j in runs_and_jobs if r.task_kind is not None or r.kind in ("retrieval", "neurons")]
        analysis = [(r, j) for r, j in runs_and_jobs if (r, j) not in training]
        for group, gpus, size in ((training, self.params["gpus_per_node"], self.runs_per_gpu),
                                  (analysis, self.analysis_gpus, 1)):
            if not group:
                continue
            packs = [group[i:i + size] for i in range(0, len(group), size)]
            self.executor.update_parameters(gpus_per_node=gpus)
            try:
                with self.executor.batch():
                    jobs = [self.executor.submit(run_jobs, [job for _, job in pack]) for pack in packs]
            except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
                raise UserError(f"submitting {len(group)} run(s) failed: {first_line(error)}") from None
            for pack, job in zip(packs, jobs):
                key = pack[0][0].id
                self.jobs[key], self.packs[key], self.submitted[key] = job, [run.id for run, _ in pack], time.time()
                print(f"  submitted {', '.join(self.packs[key])} as job {job.job_id}", flush=True)
        self.executor.update_parameters(gpus_per_node=self.params["gpus_per_node"])

    def poll(self) -> list[Finished]:
        finished = []
        for key, job in list(self.jobs.items()):
            if not job.done():
                continue
            started, run_ids = self.submitted.pop(key), self.packs.pop(key)
            del self.jobs[key]
            try:
                finished.extend(job.result())
            except Exception as error:  # noqa: BLE001 - the job died (timeout, preemption, node failure)
                text = str(error).strip().splitlines()
                finished.extend(Finished(run_id, None, time.time() - started,
                                         f"job {job.job_id} died: {text[-1] if text else error} "
                                         f"(submitit log: {job.paths.stderr})") for run_id in run_ids)
        return finished

    def busy(self) -> bool:
        return bool(self.jobs)

    def stop(self) -> None:
        for job in self.jobs.values():
            job.cancel(check=False)


def make_executor(study: Study, runs_per_gpu: int = 1) -> Executor:
    """runs_per_gpu: how many runs share one GPU (cost.study_packing's choice)."""
    kind = study.executor.get("kind", "local")
    return LocalExecutor.from_study(study, runs_per_gpu) if kind == "local" else \
        SubmititExecutor.from_study(study, runs_per_gpu)


# ---------------------------------------------------------------------------------------------------------------
# The scheduler
# ---------------------------------------------------------------------------------------------------------------


def prepare_run_dir(run: Run, decision: Decision, study_dir: Path) -> None:
    """Restart: delete the directory (only ever on --restart). Run again: remove what an unfinished run of the same
    spec left (e.g. rewind weights of an IMP run killed before its first results), never a complete run's files;
    an analysis that runs again loses the outputs that mark it complete first. Then record the spec (study paths
    relative to the study folder) and the config. Nothing happens unless the folder resolves inside the study's."""
    check_inside(run.run_dir, study_dir, f"run {run.id}: its folder")
    if decision.action == "restart" and run.run_dir.exists():
        shutil.rmtree(run.run_dir)
    elif decision.action == "run" and run.task_kind is not None and not is_complete(run):
        paths = RunPaths(run.run_dir)
        if paths.result_entries():
            clear_entries(paths, paths.result_entries())
    elif decision.action == "run" and run.task_kind is None:  # an analysis: its old outputs must not look complete
        for name in run.outputs:                              # if this run fails
            (run.run_dir / name).unlink(missing_ok=True)
    run.run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run.run_dir / CONFIG, run.config)
    write_json(run.run_dir / RECORD, record(run, study_dir))


def execute(study: Study, decisions: dict[str, Decision], executor: Executor, cwd: str, poll_seconds: float = 0.5,
            gpus_per_run: int = 1) -> dict[str, Outcome]:
    """Run every run not skipped, each once its dependencies are done; a failure only stops what depends on it."""
    outcomes: dict[str, Outcome] = {rid: Outcome(rid, "complete", "already complete")
                                    for rid, d in decisions.items() if d.action == "skip"}
    waiting = [run for run in study.runs.values() if run.id not in outcomes]
    executor.prepare(waiting)
    try:
        while waiting or executor.busy():
            ready = []
            for run in list(waiting):
                if not all(d in outcomes for d in run.deps):
                    continue
                bad = [d for d in run.deps if outcomes[d].status in ("failed", "skipped")]
                waiting.remove(run)
                if bad and not run.soft_deps:
                    outcomes[run.id] = Outcome(run.id, "skipped", f"needs {bad[0]}, which {outcomes[bad[0]].status}")
                    run.run_dir.mkdir(parents=True, exist_ok=True)  # the summary lists every planned folder
                    continue
                ready.append(run)
            free = executor.free_slots()
            waiting = ready[free:] + waiting  # no free slot yet: they wait, still in plan order
            ready = ready[:free]
            if ready:
                for run in ready:
                    prepare_run_dir(run, decisions[run.id], study.study_dir)
                    print(f"start  {run.id} ({decisions[run.id].action}: {decisions[run.id].reason})", flush=True)
                executor.submit([(r, job_for(r, decisions[r.id].action == "resume", cwd, gpus_per_run))
                                 for r in ready])
            for finished in executor.poll():
                outcomes[finished.id] = _finish(study.runs[finished.id], finished)
            if not ready:
                time.sleep(poll_seconds)
    except KeyboardInterrupt:
        executor.stop()
        raise
    return outcomes


def _finish(run: Run, finished: Finished) -> Outcome:
    log = str(run.run_dir / LOG)
    code = finished.returncode
    if code == 0 and is_complete(run):
        print(f"done   {run.id} ({finished.seconds:.0f} s)", flush=True)
        return Outcome(run.id, "ok", "", log, float(round(finished.seconds)))
    if code is None:
        reason = finished.error
    elif code == 0:
        reason = f"exited 0 but left no {', '.join(run.outputs)}: {last_line(Path(log))}"
    else:
        reason = f"exit {code}: {last_line(Path(log))}"
    print(f"FAILED {run.id}: {reason}", flush=True)
    return Outcome(run.id, "failed", reason, log)

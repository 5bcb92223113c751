"""A study's one-shot stage: masks from per-language calibration text, and their analyses, as runs.

    oneshot/<method>[_N-M]/<lang>/s<seed>          prune_oneshot.py (a calibration-free method: one run, lang 'all')
    consensus/oneshot_<method>/majority_no_<lang>/<p>/s<seed>   mask_ops.py: majority of every other language
    similarity/oneshot_<method>/<p>/s<seed> | all_seeds         mask_similarity.py (first seed: --by head, which
                                                               also gives each language's specific weights per layer)
    perplexity/oneshot/<p>                         mask_perplexity.py: dense, random and every first-seed mask on
                                                   every eval language (the perplexity transfer matrix)
    retrieval/oneshot_<method>/<p>/<pair>/s<seed>, representations/... sentence_retrieval.py and
                                                   representation_similarity.py per pair, dense and under masks
    neurons/oneshot_<method>/<p>/s<seed>           language_neurons.py ('oneshot.neurons'): LAPE's neurons of every
                                                   language in one run, their ablation, their overlap with the masks

The analyses are the ones tickets use (plan.add_similarity_run, plan.add_retrieval_run, mask_ops.py); only the
masks they read differ.
"""
from __future__ import annotations

from typing import Optional

from utils.infra.errors import UserError
from utils.infra.outputs import ONESHOT_RESULTS, RunPaths
from . import schema
from .plan import Run, Study, add_retrieval_run, add_similarity_run, percent_id, retrieval_data

ONESHOT_KINDS = ("oneshot",)
ONESHOT_ANALYSIS_KINDS = ("perplexity", "representations")
# The run kinds whose measured seconds per run (oneshot.seconds_per_run) the dry run's estimate takes.
TIMED_KINDS = ("oneshot", "consensus", "similarity", "perplexity", "retrieval", "representations", "neurons")


def method_label(method: str, structure: str) -> str:
    """'wanda', or 'wanda_2-4' for an N:M structure (':' cannot be in a folder name)."""
    return method if structure == "unstructured" else f"{method}_{structure.replace(':', '-')}"


def load_spec(study: Study) -> Optional[dict]:
    """The 'oneshot' object, checked, with its defaults filled in; None when the study has none."""
    from utils.oneshot.methods import METHODS, NEEDS_CALIBRATION, Structure

    raw = study.raw.get("oneshot")
    if raw is None:
        return None
    where = f"{study.path}: oneshot"
    schema.check(raw, schema.ONESHOT, where, ("languages", "methods", "eval_files"))
    spec = {"structures": ["unstructured"], "sparsity": 0.5, "consensus": True, "random": True, **raw}
    spec["model"] = raw.get("model") or study.raw.get("model")
    if not spec["model"]:
        raise UserError(f"{where}: no 'model' (give oneshot.model or the study's model)")
    for key in ("languages", "methods", "structures", "eval_languages"):
        schema.check_distinct(spec.get(key, []), f"{where}.{key}")
    for method in spec["methods"]:
        if method not in METHODS:
            raise UserError(f"{where}.methods: unknown method '{method}' (known: {', '.join(METHODS)})")
    if not 0 < spec["sparsity"] < 1:
        raise UserError(f"{where}.sparsity must be a fraction in (0, 1), got {spec['sparsity']}")
    for structure in spec["structures"]:
        try:
            Structure.parse(structure).check(spec["sparsity"])
        except UserError as error:
            raise UserError(f"{where}.structures: {error}") from None
    if any(NEEDS_CALIBRATION[m] for m in spec["methods"]) and "calibration_file" not in spec:
        raise UserError(f"{where}: methods {', '.join(m for m in spec['methods'] if NEEDS_CALIBRATION[m])} need "
                        "'calibration_file' ('{lang}' is replaced by each language)")
    for key in ("calibration_file", "eval_files"):
        if key in spec and len(spec["languages"]) > 1 and "{lang}" not in spec[key]:
            raise UserError(f"{where}.{key} must contain '{{lang}}' for a study of several languages")
    batch = spec.get("calibration_batch_size", 1)
    if batch < 1 or spec.get("calibration_samples", 128) % batch:
        raise UserError(f"{where}.calibration_batch_size {batch} must be >= 1 and divide calibration_samples "
                        f"{spec.get('calibration_samples', 128)}")
    for kind, value in spec.get("seconds_per_run", {}).items():
        if kind not in TIMED_KINDS:
            raise schema.unknown_key(f"{where}.seconds_per_run", kind, TIMED_KINDS)
        if not schema.is_type(value, "number") or value <= 0:
            raise UserError(f"{where}.seconds_per_run.{kind} must be a positive number, got {value!r}")
    if "neurons" in spec:
        _check_neurons(spec, where)
    spec.setdefault("eval_languages", spec["languages"])
    return spec


def _check_neurons(spec: dict, where: str) -> None:
    """'oneshot.neurons': its keys, and what LAPE needs (two languages, text per language)."""
    schema.check(spec["neurons"], schema.ONESHOT_NEURONS, f"{where}.neurons")
    if len(spec["languages"]) < 2:
        raise UserError(f"{where}.neurons: LAPE compares languages: oneshot.languages needs two or more")
    if "{lang}" not in spec["neurons"].get("text_files", spec.get("calibration_file", "{lang}")):
        raise UserError(f"{where}.neurons.text_files must contain '{{lang}}'")


def add_oneshot(study: Study) -> None:
    """Every run of the one-shot stage (after the tickets' runs, before the summary)."""
    spec = load_spec(study)
    if spec is None:
        return
    from utils.oneshot.methods import NEEDS_CALIBRATION

    p = 100 * spec["sparsity"]
    masks: dict[str, dict[str, tuple[str, str]]] = {}  # label -> "lang/seed" -> (run id, mask path)
    for method in spec["methods"]:
        for structure in spec["structures"]:
            label = method_label(method, structure)
            calibrated = NEEDS_CALIBRATION[method]
            for lang in spec["languages"] if calibrated else ["all"]:
                for seed in study.seeds if calibrated else study.seeds[:1]:
                    masks.setdefault(label, {})[f"{lang}/{seed}"] = _add_prune(study, spec, method, structure,
                                                                              label, lang, seed)
    first = study.seeds[0]
    calibrated = [label for label in masks if "all" not in {k.split("/")[0] for k in masks[label]}]
    evaluated: list[tuple[str, tuple[str, str]]] = []
    for label, found in masks.items():
        evaluated += [(f"{label}/{key.split('/')[0]}", mask) for key, mask in found.items()
                      if key.endswith(f"/{first}")]
        if label not in calibrated:
            continue
        add_similarity_run(study, f"similarity/oneshot_{label}/{percent_id(p)}/s{first}",
                            [found[f"{lang}/{first}"] for lang in spec["languages"]])
        _label(study, f"similarity/oneshot_{label}/{percent_id(p)}/s{first}", [f"{label}/{lang}" for lang in spec["languages"]],
               by="head")
        if len(study.seeds) > 1:
            add_similarity_run(study, f"similarity/oneshot_{label}/{percent_id(p)}/all_seeds", list(found.values()))
            _label(study, f"similarity/oneshot_{label}/{percent_id(p)}/all_seeds",
                   [f"{label}/{key.replace('/', '/s')}" for key in found])
        if spec["consensus"] and "_" not in label and len(spec["languages"]) > 2:
            evaluated += _add_leave_one_out(study, spec, label, found, first, p)
    _add_perplexity(study, spec, evaluated, p)
    unstructured = [label for label in calibrated if "_" not in label]
    if "neurons" in spec:
        _add_neurons(study, spec, masks, unstructured, first, p)
    if "retrieval" in study.raw and unstructured:
        _add_oneshot_retrieval(study, spec, masks[unstructured[0]], unstructured[0], first, p)


def _dtype(spec: dict) -> dict:
    return {"dtype": spec["dtype"]} if "dtype" in spec else {}


def _model(spec: dict) -> dict:
    """The flags that choose the model and how it runs, for every run of the stage that loads it."""
    return {"model_name_or_path": spec["model"], **_dtype(spec)}


def _add_prune(study: Study, spec: dict, method: str, structure: str, label: str, lang: str,
               seed: int) -> tuple[str, str]:
    run_id = f"oneshot/{label}/{lang}/s{seed}"
    run_dir = study.study_dir / run_id
    config = {**_model(spec), "output_dir": str(run_dir), "method": method,
              "sparsity": spec["sparsity"], "structure": structure, "seed": seed, **spec.get("overrides", {})}
    if "calibration_seq_len" in spec:  # also checked against the model's positions when no text is read
        config["calibration_seq_len"] = spec["calibration_seq_len"]
    if lang != "all":
        config.update({"data_language": lang, "calibration_file": spec["calibration_file"]})
        for key in ("calibration_samples", "calibration_batch_size"):
            if key in spec:
                config[key] = spec[key]
    origins = {"model_name_or_path": "oneshot.model", "data_language": "oneshot.languages", "seed": "seeds",
               **{key: f"oneshot.{key}" for key in ("method", "sparsity", "structure", "calibration_file",
                                                    "calibration_samples", "calibration_batch_size",
                                                    "calibration_seq_len", "dtype")},
               **{key: "oneshot.overrides" for key in spec.get("overrides", {})}}
    study.add(Run(run_id, "oneshot", "prune_oneshot.py", config, run_dir, outputs=[ONESHOT_RESULTS],
                  origins=origins))
    return run_id, str(RunPaths(run_dir).mask_file(spec["sparsity"]))


def _label(study: Study, run_id: str, labels: list[str], by: Optional[str] = None) -> None:
    """Name the masks of a similarity run by method (with its structure) and language; the first seed's run also
    per head and FFN block (--by head), which gives each language's specific weights per layer."""
    if run_id in study.runs:
        study.runs[run_id].config["labels"] = labels
        if by:
            study.runs[run_id].config["by"] = by


def _add_leave_one_out(study: Study, spec: dict, label: str, found: dict, seed: int,
                       p: float) -> list[tuple[str, tuple[str, str]]]:
    """Per language: the majority of every other language's mask, re-pruned to the sparsity by |w|."""
    added = []
    for left_out in spec["languages"]:
        others = [found[f"{lang}/{seed}"] for lang in spec["languages"] if lang != left_out]
        run_id = f"consensus/oneshot_{label}/majority_no_{left_out}/{percent_id(p)}/s{seed}"
        run_dir = study.study_dir / run_id
        config = {"operation": "majority", "masks": [m for _, m in others], "output": str(run_dir / "mask.pt"),
                  "sparsity": p, "checkpoint": spec["model"]}
        study.add(Run(run_id, "consensus", "mask_ops.py", config, run_dir, [d for d, _ in others],
                      outputs=["mask.pt"]))
        added.append((f"{label}/majority_no_{left_out}", (run_id, str(run_dir / "mask.pt"))))
    return added


def _add_perplexity(study: Study, spec: dict, evaluated: list[tuple[str, tuple[str, str]]], p: float) -> None:
    run_id = f"perplexity/oneshot/{percent_id(p)}"
    run_dir = study.study_dir / run_id
    files = ",".join(f"{lang}={spec['eval_files'].replace('{lang}', lang)}" for lang in spec["eval_languages"])
    config = {**_model(spec), "eval_files": files, "masks": [m for _, (_, m) in evaluated],
              "labels": [label for label, _ in evaluated], "seq_len": spec.get("eval_seq_len", 128),
              "output_dir": str(run_dir), "seed": study.seeds[0]}
    if spec.get("max_eval_windows"):
        config["max_windows"] = spec["max_eval_windows"]
    if spec["random"]:
        config["random_sparsity"] = spec["sparsity"]
    study.add(Run(run_id, "perplexity", "mask_perplexity.py", config, run_dir,
                  sorted({d for _, (d, _) in evaluated}), outputs=["mask_perplexity.json"],
                  origins={"eval_files": "oneshot.eval_files", "seq_len": "oneshot.eval_seq_len",
                           "max_windows": "oneshot.max_eval_windows", "model_name_or_path": "oneshot.model"}))


def _add_neurons(study: Study, spec: dict, masks: dict, unstructured: list[str], seed: int, p: float) -> None:
    """neurons/oneshot_<label>/<p>/s<seed>: ONE language_neurons.py run over every language (LAPE selects neurons
    jointly over the languages, so a run per language would not be LAPE), with the ablation matrix on the held-out
    text of every eval language and the overlap with the first unstructured calibrated method's masks of that seed."""
    where = f"{study.path}: oneshot.neurons"
    if not unstructured:
        raise UserError(f"{where} needs masks per language: a calibrated method (wanda, sparsegpt) in oneshot.methods "
                        "and 'unstructured' in oneshot.structures")
    label, options = unstructured[0], spec["neurons"]
    found = [masks[label][f"{lang}/{seed}"] for lang in spec["languages"]]
    run_id = f"neurons/oneshot_{label}/{percent_id(p)}/s{seed}"
    run_dir = study.study_dir / run_id
    config = {**_model(spec), **options,
              "text_files": options.get("text_files", spec.get("calibration_file")),
              "languages": ",".join(spec["languages"]),
              "eval_files": ",".join(f"{lang}={spec['eval_files'].replace('{lang}', lang)}"
                                     for lang in spec["eval_languages"]),
              "mask_dir": ",".join(f"{lang}={mask}" for lang, (_, mask) in zip(spec["languages"], found)),
              "baseline_seed": seed, "output_dir": str(run_dir)}
    origins = {"model_name_or_path": "oneshot.model", **{key: f"oneshot.neurons.{key}" for key in options},
               "text_files": "oneshot.neurons.text_files" if "text_files" in options else "oneshot.calibration_file",
               "languages": "oneshot.languages", "eval_files": "oneshot.eval_files", "mask_dir": "oneshot.methods",
               "baseline_seed": "seeds", "output_dir": "study_dir"}
    study.add(Run(run_id, "neurons", "language_neurons.py", config, run_dir, sorted({d for d, _ in found}),
                  outputs=["neurons.json"], origins=origins))


def _add_oneshot_retrieval(study: Study, spec: dict, found: dict, label: str, seed: int, p: float) -> None:
    """Retrieval and CKA per layer for each pair: dense, and each side under its own language's mask."""
    where = f"{study.path}: retrieval"
    retrieval = study.raw["retrieval"]
    for pair in retrieval.get("pairs") or []:
        src, tgt = pair.split("-")
        missing = [lang for lang in (src, tgt) if f"{lang}/{seed}" not in found]
        if missing:
            raise UserError(f"{where}: pair {pair} needs one-shot masks in {', '.join(missing)} "
                            f"(oneshot.languages)")
        data = {**retrieval_data(retrieval, pair), **_dtype(spec)}
        (dep_a, mask_a), (dep_b, mask_b) = found[f"{src}/{seed}"], found[f"{tgt}/{seed}"]
        masked = {**data, "src_mask": mask_a, "tgt_mask": mask_b}
        runs = [(f"oneshot_{label}/{percent_id(p)}/{pair}/s{seed}", masked, sorted({dep_a, dep_b})), (f"dense/{pair}", data, [])]
        for name, config, deps in runs:
            if f"retrieval/{name}" not in study.runs:
                add_retrieval_run(study, f"retrieval/{name}", spec["model"], config, deps)
            if spec.get("cka_dims"):
                _add_representations_run(study, f"representations/{name}", spec, config, deps)


def _add_representations_run(study: Study, run_id: str, spec: dict, data: dict, deps: list[str]) -> None:
    run_dir = study.study_dir / run_id
    config = {**_model(spec), **data, "pooling": "mean", "cca_dims": spec["cka_dims"],
              "output_dir": str(run_dir)}
    study.add(Run(run_id, "representations", "representation_similarity.py", config, run_dir, deps,
                  outputs=[f"representations_{data['name']}.json"]))

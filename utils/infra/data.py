"""Reading a task's examples per language, from local JSON-lines files or the Hugging Face hub."""
from __future__ import annotations

import difflib
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import pyarrow.compute as pc
from datasets import ClassLabel, Dataset, List, Sequence, Value, concatenate_datasets, load_dataset

from utils.infra.args import DataArguments
from utils.infra.errors import UserError, first_line


@dataclass(frozen=True)
class HubDataset:
    """A hub dataset whose configs are languages: its id, the short names --dataset_name may use, and its
    languages (so a typo in a language stops at once, even offline; empty: not checked)."""

    id: str
    aliases: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()

    def resolve(self, dataset_name: Optional[str]) -> str:
        """The hub id for --dataset_name: this dataset when unset or one of its names, else the name as given."""
        if dataset_name is None or dataset_name in self.aliases:
            return self.id
        return dataset_name


def data_file(template: Optional[str], lang: str) -> Optional[str]:
    """Expand '{lang}' in a file template; a template without it serves one language only."""
    if template is None:
        return None
    return template.replace("{lang}", lang)


def load_split(
    data_args: DataArguments,
    lang: str,
    split: str,
    required_fields: Mapping[str, str],
    hub: Optional[HubDataset] = None,
) -> Dataset:
    """One language's split ('train', 'validation', 'test'): the local file if given, else the hub dataset (the
    task's `hub` unless --dataset_name names another), with every row's `required_fields` ({name: kind}, kinds in
    FIELD_KINDS) checked."""
    template = {"train": data_args.train_file, "validation": data_args.validation_file, "test": data_args.test_file}[split]
    if template is not None:
        if "{lang}" not in template and len(set(data_args.languages + data_args.extra_eval_languages)) > 1:
            raise UserError(f"--{split}_file {template} serves one language; use '{{lang}}' in it for several")
        dataset = _load_json_lines(data_file(template, lang), lang)
        source = data_file(template, lang)
    else:
        hub_id = hub.resolve(data_args.dataset_name) if hub is not None else data_args.dataset_name
        if hub_id is None:
            raise UserError(f"no data for the {split} split: pass --dataset_name or --{split}_file")
        known = hub.languages if hub is not None and hub_id == hub.id else ()
        dataset = _load_hub(hub_id, lang, split, known)
        source = f"{hub_id} ({lang}, {split})"
    missing = [f for f in required_fields if f not in dataset.column_names]
    if missing:
        raise UserError(f"{source} lacks field(s) {', '.join(missing)} (it has: {', '.join(dataset.column_names)})")
    if len(dataset) == 0:
        raise UserError(f"{source} holds no examples")
    check_fields(dataset, required_fields, source)
    return dataset


# kind -> (is a value of this kind?, what it should be)
FIELD_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "text": (lambda v: isinstance(v, str), "text"),
    "words": (lambda v: isinstance(v, list) and all(isinstance(w, str) for w in v), "a list of strings"),
    "ids": (lambda v: isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v),
            "a list of integers"),
    "label": (lambda v: isinstance(v, (int, str)) and not isinstance(v, bool), "an integer or a label word"),
}


def check_fields(dataset: Dataset, kinds: Mapping[str, str], source: str) -> None:
    """Stop at the first row whose field is null or of the wrong type, naming the row. The column types tell
    at once when every row is fine; rows are only walked when a column is mixed, of another type or has nulls."""
    for name, kind in kinds.items():
        if _column_is_clean(dataset, name, kind):
            continue
        is_kind, expected = FIELD_KINDS[kind]
        for row, value in enumerate(dataset[name]):
            if not is_kind(value):
                shown = "null" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
                raise UserError(f"{source} example {row}: field '{name}' is {shown}, expected {expected} "
                                "(with no null)")
        if not isinstance(dataset.features[name], (Value, ClassLabel, List, Sequence)):
            raise UserError(f"{source}: field '{name}' mixes value types across rows (e.g. numbers and text)")


def _column_is_clean(dataset: Dataset, name: str, kind: str) -> bool:
    feature = dataset.features[name]
    texts, ints = ("string", "large_string"), ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")
    if kind in ("words", "ids"):
        inner = feature.feature if isinstance(feature, (List, Sequence)) else None
        wanted = texts if kind == "words" else ints
        column = dataset.data.column(name)
        typed = (isinstance(inner, Value) and inner.dtype in wanted) or (kind == "ids" and isinstance(inner, ClassLabel))
        return typed and column.null_count == 0 and pc.list_flatten(column).null_count == 0
    wanted = texts if kind == "text" else texts + ints
    typed = (isinstance(feature, Value) and feature.dtype in wanted) or (kind == "label" and isinstance(feature, ClassLabel))
    return typed and dataset.data.column(name).null_count == 0


def _load_json_lines(path: str, lang: str) -> Dataset:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"data file not found: {path} (language '{lang}')")
    if file.stat().st_size == 0:
        raise UserError(f"data file is empty: {path}")
    try:
        if file.suffix == ".txt":  # plain text: one example (an article) per blank-line-separated paragraph
            return load_dataset("text", data_files=str(file), split="train", sample_by="paragraph")
        return load_dataset("json", data_files=str(file), split="train")
    except Exception as error:  # datasets raises many types for malformed JSON
        raise UserError(f"cannot read {path} as JSON lines: {first_line(error)}") from None


def _load_hub(hub_id: str, lang: str, split: str, known: tuple[str, ...] = ()) -> Dataset:
    if known and lang not in known:
        close = difflib.get_close_matches(lang, known, n=3)
        hint = f" (close: {', '.join(close)})" if close else ""
        raise UserError(f"unknown language '{lang}' for {hub_id}{hint}")
    try:
        return load_dataset(hub_id, lang, split=split)
    except ValueError as error:
        text = str(error)
        if "config" in text.lower() and lang in text:
            raise UserError(f"unknown language '{lang}' for {hub_id}") from None
        raise UserError(f"cannot load {hub_id} ({lang}, {split}): {first_line(error)}") from None
    except Exception as error:  # offline, not found, ...
        raise UserError(
            f"cannot load {hub_id} ({lang}, {split}) from the hub: {first_line(error)}; "
            "offline, pass local files with --train_file/--validation_file"
        ) from None


def build_splits(
    data_args: DataArguments, training_args, encode: Callable[[str, str], Dataset]
) -> tuple[Optional[Dataset], dict[str, Dataset]]:
    """The training set (an equal-share mixture of the training languages) and one evaluation set per language
    (training languages first, then --eval_languages), from `encode(split, language)`."""
    train = None
    if training_args.do_train:
        per_language = {lang: encode("train", lang) for lang in data_args.languages}
        train = equal_share_mixture(per_language, data_args.max_train_samples, training_args.seed)
    eval_sets = {}
    if training_args.do_eval:
        for lang in data_args.languages + data_args.extra_eval_languages:
            eval_sets[lang] = first(encode("validation", lang), data_args.max_eval_samples)
    return train, eval_sets


def map_examples(dataset: Dataset, function: Callable, data_args: DataArguments, desc: str, **kwargs) -> Dataset:
    """A batched `datasets` map that replaces the raw columns (tokenisation), cached by the library's fingerprints
    and rebuilt with --overwrite_cache."""
    return dataset.map(
        function,
        batched=True,
        remove_columns=dataset.column_names,
        num_proc=data_args.preprocessing_num_workers,
        load_from_cache_file=not data_args.overwrite_cache,
        desc=desc,
        **kwargs,
    )


def first(dataset: Dataset, count: Optional[int]) -> Dataset:
    """At most `count` examples (all of them when count is None)."""
    return dataset.select(range(min(count, len(dataset)))) if count else dataset


def pad_multiple(training_args) -> Optional[int]:
    """Pad batches to a multiple of 8 under mixed precision (tensor-core friendly shapes)."""
    return 8 if (training_args.fp16 or training_args.bf16) else None


def equal_share_mixture(per_language: dict[str, Dataset], total: Optional[int], seed: int) -> Dataset:
    """The paper's multilingual training set: the same total size as one language, an equal share from each."""
    if len(per_language) == 1:
        (only,) = per_language.values()
        return only.shuffle(seed=seed).select(range(min(total, len(only)))) if total else only
    size = total or min(len(d) for d in per_language.values())
    share = size // len(per_language)
    parts = []
    for lang, dataset in per_language.items():
        if len(dataset) < share:
            raise UserError(f"language '{lang}' has {len(dataset)} training examples, fewer than its share {share}")
        parts.append(dataset.shuffle(seed=seed).select(range(share)))
    return concatenate_datasets(parts).shuffle(seed=seed)


def check_labels(dataset: Dataset, column: str, num_labels: int, source: str) -> None:
    """Stop on a label outside 0..num_labels-1 (e.g. XNLI's -1 for unlabelled pairs) before any training."""
    for row, value in enumerate(dataset[column]):
        values = value if isinstance(value, list) else [value]
        for label in values:
            if not isinstance(label, int) or not 0 <= label < num_labels:
                raise UserError(f"{source} example {row}: {column} {label!r} is out of range 0..{num_labels - 1}")

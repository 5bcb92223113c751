"""What every analysis shares to write its results: one number formatter, one CSV and text-table writer, typed
results to and from JSON, and the rule that the completion file is written last.

The analyses' maths (similarity.py, head_similarity.py, results.py, cca.py, ...) return dataclasses and write
nothing; their writers (similarity_writers.py, summary_writers.py, ...) and the study's report use this module.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, TypeVar

from utils.infra.io import atomic_write, write_json
from utils.infra.outputs import remove_unwritten

METRIC_DIGITS = 4  # a task metric in a table (F1, accuracy, perplexity); similarities use the default 3


def format_number(value: Optional[float], digits: int = 3) -> str:
    """A table cell: the value to `digits` decimals, or '-' when there is none."""
    return "-" if value is None else f"{value:.{digits}f}"


def format_percent(fraction: float) -> str:
    """A sparsity given as a fraction, as a percentage label: 0.5 -> '50%', 0.1234 -> '12.3%'."""
    return f"{format(round(100 * fraction, 1), 'g')}%"


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """CSV with None as an empty cell and floats to 6 significant digits."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in row])
    return buffer.getvalue()


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    write_text(path, csv_text(header, rows))
    return Path(path)


def text_table(header: Sequence, rows: Sequence[Sequence]) -> str:
    """Aligned text columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    def cells(row: Sequence) -> Iterable[str]:
        return (str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join("  ".join(cells(row)) for row in (header, *rows))


# ---------------------------------------------------------------------------------------------------------------
# Typed results <-> JSON
# ---------------------------------------------------------------------------------------------------------------

T = TypeVar("T")
JSON_NAME = "json"  # field metadata: the key in the JSON file when it differs from the field's name


def to_json(value: Any) -> Any:
    """A dataclass tree as JSON-ready dicts and lists, keys in field order (renamed by metadata['json'])."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.metadata.get(JSON_NAME, f.name): to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def from_json(cls: type[T], data: Any) -> T:
    """The dataclass `cls` from what to_json wrote (unknown keys are ignored; missing ones take their default)."""
    return _convert(cls, data)


def _convert(kind: Any, data: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return None if data is None else _convert(options[0], data) if len(options) == 1 else data
    if origin is list:
        (item,) = typing.get_args(kind)
        return [_convert(item, v) for v in data]
    if origin is dict:
        _, item = typing.get_args(kind)
        return {k: _convert(item, v) for k, v in data.items()}
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = {f.metadata.get(JSON_NAME, f.name): f for f in dataclasses.fields(kind) if f.init}
        return kind(**{f.name: _convert(hints[f.name], data[key]) for key, f in fields.items() if key in data})
    return data


# ---------------------------------------------------------------------------------------------------------------
# The completion file last
# ---------------------------------------------------------------------------------------------------------------


def finish_outputs(root: Path, patterns: Sequence[str], written: Sequence[Path], completion: Path,
                   write_completion: Callable[[Path], None]) -> list[Path]:
    """Remove this analysis' earlier files that this run did not rewrite, then write the completion file (the one
    a study checks): a run killed before this point never looks complete without its figures and tables."""
    remove_unwritten(root, patterns, [*written, completion])
    write_completion(completion)
    return [completion, *written]


def write_json_last(root: Path, patterns: Sequence[str], written: Sequence[Path], completion: Path,
                    data: Any) -> list[Path]:
    """finish_outputs with a JSON completion file."""
    return finish_outputs(root, patterns, written, completion, lambda path: write_json(path, data))

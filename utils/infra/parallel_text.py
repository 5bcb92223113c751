"""Verse-aligned parallel text from a Bible database: the same verse on the same line in every language.

The database is SQLite with a table `bible(bbName, bNumber, cNumber, vNumber, vText)` (one row per version and
verse; bNumber 1-66 in the Protestant order) and `bibleRef(bbName, bNumber, bName, ...)` for book names. Only verses
present and non-empty in every chosen version are kept, so line i of every file is the same verse. Splits are by
book (never a verse of one book in two splits), so held-out text is unseen text, not neighbouring verses.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from utils.infra.errors import UserError
from utils.infra.io import write_bytes

Ref = tuple[int, int, int]  # (book, chapter, verse)


@dataclass(frozen=True)
class Version:
    """One translation chosen for one language, identified in the data by a verse's expected wording."""

    lang: str
    code: str  # bbName in the database
    name: str
    year: int
    licence: str  # why its text may be extracted and used
    fingerprint: tuple[int, int, int, str]  # (book, chapter, verse, words that verse must contain)


@dataclass
class AlignedText:
    """Every chosen language's verses on the same references, in canonical order."""

    refs: list[Ref]
    texts: dict[str, list[str]]  # lang -> one verse per ref
    available: dict[str, int]  # lang -> non-empty verses its version has
    book_names: dict[int, str] = field(default_factory=dict)


def _clean(text: str) -> str:
    """One line: runs of whitespace (tabs, newlines) become one space."""
    return " ".join(text.split())


def open_database(path: Path) -> sqlite3.Connection:
    """The database read-only; a file without the expected table stops with one line."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = {row[0] for row in connection.execute("select name from sqlite_master where type='table'")}
    if "bible" not in tables:
        connection.close()
        raise UserError(f"{path} has no 'bible' table: not the expected Bible database")
    return connection


def check_versions(connection: sqlite3.Connection, versions: Sequence[Version]) -> None:
    """Each version's code holds the text it is said to hold (its fingerprint verse), or stop with one line."""
    for version in versions:
        book, chapter, verse, words = version.fingerprint
        row = connection.execute("select vText from bible where bbName=? and bNumber=? and cNumber=? and vNumber=?",
                                 (version.code, book, chapter, verse)).fetchone()
        if row is None or words not in _clean(row[0]):
            raise UserError(f"version '{version.code}' in the database is not {version.name} ({version.lang}): "
                            f"{book}:{chapter}:{verse} does not read '{words}'")


def read_aligned(connection: sqlite3.Connection, versions: Sequence[Version], names_from: str | None = None
                 ) -> AlignedText:
    """The verses every version has (non-empty after cleaning), in (book, chapter, verse) order; book names
    from version code `names_from` (the first version's by default)."""
    if len({v.lang for v in versions}) != len(versions):
        raise UserError("one version per language: " + ", ".join(v.lang for v in versions))
    per_lang: dict[str, dict[Ref, str]] = {}
    for version in versions:
        rows = connection.execute("select bNumber, cNumber, vNumber, vText from bible where bbName=?",
                                  (version.code,))
        verses = {(b, c, v): _clean(text) for b, c, v, text in rows}
        per_lang[version.lang] = {ref: text for ref, text in verses.items() if text}
        if not per_lang[version.lang]:
            raise UserError(f"the database holds no verse of version '{version.code}' ({version.name})")
    refs = sorted(set.intersection(*(set(verses) for verses in per_lang.values())))
    code = names_from or versions[0].code
    names = dict(connection.execute("select bNumber, bName from bibleRef where bbName=?", (code,)).fetchall()) \
        if _has_table(connection, "bibleRef") else {}
    return AlignedText(refs, {lang: [verses[ref] for ref in refs] for lang, verses in per_lang.items()},
                       {lang: len(verses) for lang, verses in per_lang.items()}, names)


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    return connection.execute("select 1 from sqlite_master where type='table' and name=?", (name,)).fetchone() \
        is not None


def split_by_book(text: AlignedText, splits: Mapping[str, frozenset[int]]) -> dict[str, AlignedText]:
    """The aligned text cut into named splits by book number; splits must not share a book."""
    names = list(splits)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            shared = splits[first] & splits[second]
            if shared:
                raise UserError(f"splits {first} and {second} share books {sorted(shared)}")
    result = {}
    for name, books in splits.items():
        keep = [i for i, ref in enumerate(text.refs) if ref[0] in books]
        result[name] = AlignedText([text.refs[i] for i in keep],
                                   {lang: [verses[i] for i in keep] for lang, verses in text.texts.items()},
                                   text.available, {b: n for b, n in text.book_names.items() if b in books})
    return result


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    write_bytes(path, "".join(line + "\n" for line in lines).encode("utf-8"))


def write_split(split: str, text: AlignedText, out_dir: Path, pivot: str) -> list[Path]:
    """`{split}.{lang}.txt` (one verse per line), `{split}.refs.txt` (book chapter verse) and, for the retrieval
    tools, `{pivot}-{xx}.{split}.tsv` with a '{pivot}<TAB>{xx}' header line."""
    if pivot not in text.texts:
        raise UserError(f"the pivot language {pivot} is not among the chosen ones ({', '.join(text.texts)})")
    written = []
    for lang, verses in text.texts.items():
        _write_lines(out_dir / f"{split}.{lang}.txt", verses)
        written.append(out_dir / f"{split}.{lang}.txt")
    _write_lines(out_dir / f"{split}.refs.txt", [f"{b} {c} {v}" for b, c, v in text.refs])
    written.append(out_dir / f"{split}.refs.txt")
    for lang, verses in text.texts.items():
        if lang != pivot:
            rows = [f"{pivot}\t{lang}"] + [f"{s}\t{t}" for s, t in zip(text.texts[pivot], verses)]
            _write_lines(out_dir / f"{pivot}-{lang}.{split}.tsv", rows)
            written.append(out_dir / f"{pivot}-{lang}.{split}.tsv")
    return written

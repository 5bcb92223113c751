#!/usr/bin/env python3
"""Build the small masked-LM corpora in data/mlm/ (wikiextractor --json format).

Sources
  1. calibration_miracl.txt shipped in the PyPI package bge-m3-lite (MIT licence): 360
     MIRACL Wikipedia passages (CC BY-SA 3.0), 18 languages x 20 lines, in blocks of 20 in
     the alphabetical order of MIRACL's language codes (ar bn de en es fa fi fr hi id ja ko
     ru sw te th yo zh). Each block's language is checked against the script / stop words of
     its lines; a mismatch is reported and aborts the run.
  2. The synthetic aligned sentences of data/parallel/ (written by scripts/make_samples.py:
     NER sentences + XNLI premises/hypotheses) for en, fr, es, ru, zh, grouped into
     "articles" of 8 sentences (ids "gen-...").

Output: data/mlm/{lang}.train.json and data/mlm/{lang}.valid.json, one JSON object per line
{"id", "url", "title", "text"} as `python -m wikiextractor.WikiExtractor --json` writes.
Passages are split 16 train / 4 valid per language (proportionally if a language has fewer
usable passages), generated articles 4:1 (every fifth article goes to valid).

Usage: python scripts/prepare_mlm_sample.py [--out data]   (deterministic)
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import unicodedata
from pathlib import Path

from make_samples import write_jsonl  # same folder: scripts are run as `python scripts/...`

BLOCK_ORDER = ["ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru",
               "sw", "te", "th", "yo", "zh"]
WANTED = ["en", "fr", "es", "ru", "zh", "ar", "fa", "de"]
GENERATED = ["en", "fr", "es", "ru", "zh"]
SENTS_PER_ARTICLE = 8
STOPWORDS = {
    "en": "the of and is in to which was that are with for".split(),
    "de": "der die und das ist von den mit ein eine des sich nicht im".split(),
    "es": "el la de que y los las en del es por se una con".split(),
    "fr": "le la les de des et est du une un en dans qui au".split(),
    "fi": "ja on ovat oli se kun sen että myös".split(),
    "id": "yang dan di dengan dari ini itu ke dalam adalah".split(),
    "sw": "na ya wa kwa ni za katika la".split(),
    "yo": "ni ti àti awọn sí".split(),
}


def find_calibration_file() -> Path:
    spec = importlib.util.find_spec("bge_m3_lite")
    if spec is None or not spec.origin:
        raise SystemExit("bge_m3_lite is not installed (pip install bge-m3-lite==0.6.2)")
    path = Path(spec.origin).with_name("calibration_miracl.txt")
    if not path.exists():
        raise SystemExit(f"{path} not found")
    return path


def detect(text: str) -> str:
    """Rough language id: Unicode script, then Persian vs Arabic letters, then stop words."""
    counts: dict[str, int] = {}
    for ch in text:
        if not ch.isalpha():
            continue
        name = unicodedata.name(ch, "")
        for script in ("ARABIC", "BENGALI", "DEVANAGARI", "TELUGU", "THAI", "HANGUL",
                       "HIRAGANA", "KATAKANA", "CJK", "CYRILLIC", "LATIN"):
            if name.startswith(script):
                counts[script] = counts.get(script, 0) + 1
                break
    if not counts:
        return "?"
    script = max(counts, key=counts.get)
    if counts.get("HIRAGANA", 0) + counts.get("KATAKANA", 0) > 0 and script in (
            "CJK", "HIRAGANA", "KATAKANA"):
        return "ja"
    simple = {"BENGALI": "bn", "DEVANAGARI": "hi", "TELUGU": "te", "THAI": "th",
              "HANGUL": "ko", "CJK": "zh", "CYRILLIC": "ru"}
    if script in simple:
        return simple[script]
    if script == "ARABIC":
        persian = sum(text.count(c) for c in "پچژگکی")
        arabic = sum(text.count(c) for c in "يكة")
        return "fa" if persian > arabic else "ar"
    words = re.findall(r"\w+", text.lower())
    scores = {lang: sum(w in sw for w in words) for lang, sw in STOPWORDS.items()}
    best = max(scores, key=scores.get)
    return best if scores[best] > 0 else "latin?"


LINK_RE = re.compile(r"\[\[([^\[\]]*)\]\]")


def clean(text: str) -> str:
    """Strip wiki link markup as wikiextractor does: [[a|b]] -> b, [[a]] -> a,
    [[File:...]] / [[Category:...]] removed."""
    prev = None
    while prev != text:
        prev = text

        def repl(m):
            inner = m.group(1)
            if re.match(r"(?i)(file|image|category|категория|fichier|archivo|datei):", inner):
                return ""
            return inner.split("|")[-1]

        text = LINK_RE.sub(repl, text)
    return re.sub(r"\s+", " ", text).strip()


def read_passages(path: Path) -> dict[str, list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) != 20 * len(BLOCK_ORDER):
        raise SystemExit(f"expected {20 * len(BLOCK_ORDER)} lines, got {len(lines)}")
    by_lang: dict[str, list[str]] = {}
    problems = []
    for i, line in enumerate(lines):
        lang = BLOCK_ORDER[i // 20]
        text = clean(line)
        guess = detect(text)
        if lang in WANTED and len(text) >= 20 and guess != lang:
            problems.append(f"line {i + 1}: block says {lang}, text looks {guess}: {line[:80]!r}")
        by_lang.setdefault(lang, []).append(line)
    if problems:
        raise SystemExit("language check failed:\n" + "\n".join(problems))
    return by_lang


def generated_sentences(data: Path, lang: str) -> list[str]:
    """Synthetic sentences of `lang` from data/parallel (deduplicated, file order)."""
    out, seen = [], set()
    files = sorted((data / "parallel").glob("en-*.tsv"))
    if lang != "en":
        files = [data / "parallel" / f"en-{lang}.tsv"]
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            en, x = line.split("\t")
            s = en if lang == "en" else x
            if s not in seen:
                seen.add(s)
                out.append(s)
    return out



def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "data"))
    args = ap.parse_args()
    data = Path(args.out)
    (data / "mlm").mkdir(parents=True, exist_ok=True)
    by_lang = read_passages(find_calibration_file())
    for lang in WANTED:
        if lang not in by_lang:
            print(f"{lang}: not in calibration_miracl.txt, skipped")
            continue
        passages = [p for p in (clean(x) for x in by_lang[lang]) if len(p) >= 20]
        n_valid = max(1, round(len(passages) * 4 / 20))
        train, valid = [], []
        for k, text in enumerate(passages):
            row = {"id": f"miracl-{lang}-{k}", "url": "",
                   "title": f"MIRACL {lang} passage {k}", "text": text}
            (valid if k >= len(passages) - n_valid else train).append(row)
        n_gen = [0, 0]
        if lang in GENERATED:
            sents = generated_sentences(data, lang)
            sep = "" if lang == "zh" else " "
            for a in range(0, len(sents), SENTS_PER_ARTICLE):
                k = a // SENTS_PER_ARTICLE
                row = {"id": f"gen-{lang}-{k}", "url": "",
                       "title": f"Generated {lang} article {k}",
                       "text": sep.join(sents[a:a + SENTS_PER_ARTICLE])}
                is_valid = k % 5 == 4
                (valid if is_valid else train).append(row)
                n_gen[is_valid] += 1
        write_jsonl(data / "mlm" / f"{lang}.train.json", train)
        write_jsonl(data / "mlm" / f"{lang}.valid.json", valid)
        print(f"{lang}: {len(passages)} passages ({len(passages) - n_valid} train / {n_valid} "
              f"valid), generated articles {n_gen[0]} train / {n_gen[1]} valid")


if __name__ == "__main__":
    main()

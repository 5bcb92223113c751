#!/usr/bin/env python3
"""Deterministic generator of the small bundled multilingual datasets in data/.

Writes (for en, fr, es, ru, zh):
  data/ner/{lang}/{train,validation,test}.jsonl     WikiANN format
  data/xnli/{lang}/{train,validation,test}.jsonl    XNLI format
  data/parallel/en-{fr,es,ru,zh}.tsv                aligned sentence pairs
and (for en, fr, es):
  data/pawsx/{lang}/{train,validation,test}.jsonl   PAWS-X format

All content is synthetic but aligned: each sentence is produced from a template
whose translations are written by hand for the five languages, filled with the
same entities (persons, organisations, cities, countries) and numbers in every
language, so item i of language A is a translation of item i of language B.
The entities and templates are data files beside this script, in sample_templates/
(entities.json, ner.json, xnli.json, pawsx.json); the grammar that declines them stays here.

Usage:  python scripts/make_samples.py [--out data] [--seed 1234]
Rerunning with the same seed reproduces the files byte for byte.
"""
from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

LANGS = ["en", "fr", "es", "ru", "zh"]
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
NER_ID = {t: i for i, t in enumerate(NER_LABELS)}
SEED = 1234
TEMPLATE_DIR = Path(__file__).resolve().parent / "sample_templates"  # entities and sentence templates

# split sizes
NER_SPLITS = [("train", 150), ("validation", 60), ("test", 60)]
XNLI_SPLITS = [("train", 70), ("validation", 25), ("test", 25)]  # premises; x3 pairs each
PAWSX_LANGS = ["en", "fr", "es"]
PAWSX_SPLITS = [("train", 75), ("validation", 30), ("test", 30)]  # source sentences; x2 pairs each

# --------------------------------------------------------------------------------------
# Entities. Every form is a string in which "[...]" marks the entity span; text outside
# the brackets (prepositions, articles, Russian descriptor nouns) is tagged O.
# --------------------------------------------------------------------------------------
FR_VOWELS = "AEIOUÉÈÊÂÎÔ"


def _br(s: str) -> str:
    return s if "[" in s else f"[{s}]"


def _fr_elide(word: str, nom: str) -> str:
    """'de' + '[Anna ...]' -> "d'[Anna ...]"; only when the form starts with the entity."""
    if nom.startswith("[") and nom[1] in FR_VOWELS:
        return f"{word[:-1]}'{nom}"
    return f"{word} {nom}"


def _ru_v(word: str) -> str:
    """Russian preposition в/во."""
    if word[0] in "ВФвф" and word[1].lower() not in "аеёиоуыэюя":
        return "во"
    return "в"


def _ru_o(word: str) -> str:
    return "об" if word[0] in "АОУЭИаоуэи" else "о"


def _ru_acc(nom: str) -> str:
    if nom.endswith("а"):
        return nom[:-1] + "у"
    if nom.endswith("я"):
        return nom[:-1] + "ю"
    return nom


class Entity:
    def __init__(self, etype: str, key: str, forms: dict, gender: str = "m", **attrs):
        self.type = etype
        self.key = key
        self.forms = forms  # lang -> form -> bracketed string
        self.gender = gender
        self.attrs = attrs

    def form(self, lang: str, name: str | None) -> str:
        f = self.forms[lang]
        if name is None or name == "nom":
            return f["nom"]
        if name in f:
            return f[name]
        if lang in ("en", "zh"):
            return f["nom"]
        raise KeyError(f"{self.key}: no form {name!r} for {lang}")


def person(gender, latin, ru, zh):
    forms = {
        "en": {"nom": _br(latin)},
        "fr": {"nom": _br(latin)},
        "es": {"nom": _br(latin)},
        "ru": {"nom": _br(ru)},
        "zh": {"nom": _br(zh)},
    }
    forms["fr"]["of"] = _fr_elide("de", forms["fr"]["nom"])
    forms["fr"]["que"] = _fr_elide("que", forms["fr"]["nom"])
    return Entity("PER", latin, forms, gender)


RU_DESCRIPTORS = {  # kind -> gender, case forms of the descriptor noun
    "company": ("f", dict(nom="компания", gen="компании", dat="компании", acc="компанию",
                          ins="компанией", prep="компании")),
    "airline": ("f", dict(nom="авиакомпания", gen="авиакомпании", dat="авиакомпании",
                          acc="авиакомпанию", ins="авиакомпанией", prep="авиакомпании")),
    "bank": ("m", dict(nom="банк", gen="банка", dat="банку", acc="банк", ins="банком",
                       prep="банке")),
}


def org(latin, ru, zh, kind="company", hq=None):
    gender, desc = RU_DESCRIPTORS[kind]
    ru_name = ru if "[" in ru else f"[{ru}]"
    forms = {
        "en": {"nom": _br(latin)},
        "fr": {"nom": _br(latin)},
        "es": {"nom": _br(latin)},
        "ru": {case: f"{noun} {ru_name}" for case, noun in desc.items()},
        "zh": {"nom": _br(zh)},
    }
    forms["ru"]["bare"] = ru_name
    forms["fr"]["of"] = _fr_elide("de", forms["fr"]["nom"])
    forms["fr"]["que"] = _fr_elide("que", forms["fr"]["nom"])
    return Entity("ORG", latin, forms, gender, hq=hq)


def _ru_place_forms(nom, gen, loc, acc):
    acc = acc or _ru_acc(nom)
    first = lambda s: s.split()[0]  # noqa: E731
    return {
        "nom": f"[{nom}]", "gen": f"[{gen}]", "acc": f"[{acc}]",
        "in": f"{_ru_v(first(loc))} [{loc}]", "to": f"{_ru_v(first(acc))} [{acc}]",
        "from": f"из [{gen}]", "about": f"{_ru_o(loc)} [{loc}]",
    }


def city(key, en, fr, es, ru, zh, country, cold=False):
    """ru = (nom, gen, loc[, acc]); indeclinable: a single string."""
    if isinstance(ru, str):
        ru = (ru, ru, ru, ru)
    ru_nom, ru_gen, ru_loc, *rest = ru
    frn = f"[{fr}]"
    forms = {
        "en": {"nom": f"[{en}]"},
        "fr": {"nom": frn, "in": f"à {frn}", "to": f"à {frn}",
               "from": _fr_elide("de", frn), "of": _fr_elide("de", frn),
               "que": _fr_elide("que", frn)},
        "es": {"nom": f"[{es}]", "in": f"en [{es}]", "to": f"a [{es}]",
               "from": f"de [{es}]", "of": f"de [{es}]"},
        "ru": _ru_place_forms(ru_nom, ru_gen, ru_loc, rest[0] if rest else None),
        "zh": {"nom": f"[{zh}]"},
    }
    return Entity("LOC", key, forms, country=country, cold=cold)


def country(key, en, fr, es, ru, zh):
    """fr = (nom, in, from); es = name or (nom, in, to, from); ru = (nom, gen, loc[, acc])."""
    fr_nom, fr_in, fr_from = fr
    if isinstance(es, str):
        es = (f"[{es}]", f"en [{es}]", f"a [{es}]", f"de [{es}]")
    es_nom, es_in, es_to, es_from = es
    if isinstance(ru, str):
        ru = (ru, ru, ru, ru)
    ru_nom, ru_gen, ru_loc, *rest = ru
    forms = {
        "en": {"nom": _br(en)},
        "fr": {"nom": fr_nom, "in": fr_in, "to": fr_in, "from": fr_from, "of": fr_from},
        "es": {"nom": es_nom, "in": es_in, "to": es_to, "from": es_from, "of": es_from},
        "ru": _ru_place_forms(ru_nom, ru_gen, ru_loc, rest[0] if rest else None),
        "zh": {"nom": f"[{zh}]"},
    }
    return Entity("LOC", key, forms)


def _call(make, entry: list):
    """make(*args, **kwargs) from a data-file entry: its arguments, the keyword ones in a final object."""
    if entry and isinstance(entry[-1], dict):
        return make(*entry[:-1], **entry[-1])
    return make(*entry)


ENTITY_DATA = json.loads((TEMPLATE_DIR / "entities.json").read_text(encoding="utf-8"))
PERSONS = [_call(person, e) for e in ENTITY_DATA["persons"]]
COUNTRIES = {c.key: c for c in (_call(country, e) for e in ENTITY_DATA["countries"])}
CITIES = {c.key: c for c in (_call(city, e) for e in ENTITY_DATA["cities"])}
ORGS = [_call(org, e) for e in ENTITY_DATA["orgs"]]  # hq only where the headquarters really are in that city


# --------------------------------------------------------------------------------------
# Template language
#   {P1} {P1.form}   entity slot (P=person, O=organisation, C=city, L=country)
#   {N} {M} {H} {Y} {Y2}   numbers;  {N:one|few|many}  Russian numeral agreement
#   <P1:masc|fem>  <O1:masc|fem|neut>   choice by the slot's grammatical gender
# --------------------------------------------------------------------------------------
class T:
    def __init__(self, text: dict, *, hyps=None, paired=False, hq=False,
                 cold=False, n=(2, 9), y=(1975, 2015)):
        self.text = text  # lang -> template
        self.hyps = hyps  # XNLI, PAWS-X: [(label, {lang: text})]
        self.paired = paired  # L1 is the country of C1
        self.hq = hq  # C1 is the headquarters city of O1
        self.cold = cold  # C slots only from cold-climate cities
        self.n = n
        self.y = y  # range of {Y}
        strings = list(self.text.values())
        for _, h in hyps or []:
            strings += list(h.values())
        self.slots = sorted(set(re.findall(r"[{<]([A-Z]\d?)\b", " ".join(strings))))


XNLI_PARTS = ("entailment", "neutral", "contradiction")  # hypotheses, in label-id order
PAWSX_PARTS = ((1, "paraphrase"), (0, "swapped"))  # second sentences with their labels


def template(entry: dict, main: str | None = None, hyps=None) -> T:
    """A T from a data-file object: its text per language (entry[main] for pairs) and its optional settings
    (n, y, paired, hq, cold)."""
    texts = entry if main is None else entry[main]
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items() if k in SETTINGS}
    return T({lang: texts[lang] for lang in LANGS if lang in texts}, hyps=hyps, **settings)


def xnli_template(entry: dict) -> T:
    return template(entry, "premise", [(label, dict(entry[part])) for label, part in enumerate(XNLI_PARTS)])


def pawsx_template(entry: dict) -> T:
    return template(entry, "sentence", [(label, dict(entry[part])) for label, part in PAWSX_PARTS])


def load_templates(name: str) -> dict:
    return json.loads((TEMPLATE_DIR / f"{name}.json").read_text(encoding="utf-8"))


SETTINGS = ("n", "y", "paired", "hq", "cold")
NER_TEMPLATES = [template(e) for e in load_templates("ner")["with_entities"]]
NER_NONE_TEMPLATES = [template(e) for e in load_templates("ner")["without_entities"]]  # no entity
XNLI_TEMPLATES = [xnli_template(e) for e in load_templates("xnli")["templates"]]
PAWSX_TEMPLATES = [pawsx_template(e) for e in load_templates("pawsx")["templates"]]

# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------
SLOT_RE = re.compile(r"\{([A-Z]\d?)(?:\.(\w+))?(?::([^}]*))?\}")
GENDER_RE = re.compile(r"<([A-Z]\d?):([^>]*)>")
MARK_RE = re.compile("\x01(\\w+)\x02(.*?)\x03")
TOKEN_RE = re.compile(r"\w+|[^\w\s]")
GENDER_INDEX = {"m": 0, "f": 1, "n": 2}


def ru_plural(n: int, forms: list[str]) -> str:
    one, few, many = forms
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def render(template: str, lang: str, fill: dict) -> list[tuple[str, str | None]]:
    """Returns segments [(text, entity_type or None)]."""

    def gender_sub(m):
        options = m.group(2).split("|")
        g = GENDER_INDEX[fill[m.group(1)].gender]
        return options[min(g, len(options) - 1)]

    def slot_sub(m):
        name, form, plural = m.groups()
        value = fill[name]
        if isinstance(value, int):
            if plural:
                return f"{value} {ru_plural(value, plural.split('|'))}"
            return str(value)
        s = value.form(lang, form)
        return s.replace("[", f"\x01{value.type}\x02").replace("]", "\x03")

    s = GENDER_RE.sub(gender_sub, template)
    s = SLOT_RE.sub(slot_sub, s)
    assert "{" not in s and "<" not in s and "[" not in s, s
    # capitalise the first letter of the sentence
    for i, ch in enumerate(s):
        if ch.isalpha():
            s = s[:i] + ch.upper() + s[i + 1:]
            break
    segments, pos = [], 0
    for m in MARK_RE.finditer(s):
        if m.start() > pos:
            segments.append((s[pos:m.start()], None))
        segments.append((m.group(2), m.group(1)))
        pos = m.end()
    if pos < len(s):
        segments.append((s[pos:], None))
    return segments


def surface(segments) -> str:
    return "".join(t for t, _ in segments)


def tokenize(text: str, lang: str) -> list[str]:
    if lang == "zh":  # WikiANN zh is character-tokenised
        return [ch for ch in text if not ch.isspace()]
    return TOKEN_RE.findall(text)


def ner_record(segments, lang: str) -> dict:
    tokens, tags = [], []
    for text, etype in segments:
        toks = tokenize(text, lang)
        tokens += toks
        if etype is None:
            tags += [0] * len(toks)
        else:
            tags += [NER_ID[f"B-{etype}"]] + [NER_ID[f"I-{etype}"]] * (len(toks) - 1)
    assert tokens == tokenize(surface(segments), lang), (tokens, surface(segments))
    spans = []
    i = 0
    while i < len(tags):
        if tags[i] % 2 == 1:  # B-
            j = i + 1
            while j < len(tags) and tags[j] == tags[i] + 1:
                j += 1
            spans.append(f"{NER_LABELS[tags[i]][2:]}: {' '.join(tokens[i:j])}")
            i = j
        else:
            i += 1
    return {"tokens": tokens, "ner_tags": tags, "langs": [lang] * len(tokens),
            "spans": spans or ["None"]}


# --------------------------------------------------------------------------------------
# Filling slots
# --------------------------------------------------------------------------------------
def make_fill(t: T, rng: random.Random) -> dict:
    fill: dict = {}
    slots = t.slots
    persons = rng.sample(PERSONS, sum(s[0] == "P" for s in slots))
    orgs_needed = sum(s[0] == "O" for s in slots)
    if t.hq:
        orgs = rng.sample([o for o in ORGS if o.attrs["hq"]], orgs_needed)
    else:
        orgs = rng.sample(ORGS, orgs_needed)
    city_pool = [c for c in CITIES.values() if c.attrs["cold"] or not t.cold]
    cities = rng.sample(city_pool, sum(s[0] == "C" for s in slots))
    if t.hq:
        cities[0] = CITIES[orgs[0].attrs["hq"]]
    n_countries = sum(s[0] == "L" for s in slots)
    if t.paired:
        countries = [COUNTRIES[cities[0].attrs["country"]]]
    else:
        used = {c.attrs["country"] for c in cities}
        pool = [c for k, c in COUNTRIES.items() if k not in used]
        countries = rng.sample(pool, n_countries)
    it = {"P": iter(persons), "O": iter(orgs), "C": iter(cities), "L": iter(countries)}
    n = rng.randint(*t.n)
    nums = {"N": n, "M": n + rng.randint(3, 15), "H": 100 * rng.randint(2, 9),
            "Y": rng.randint(*t.y)}
    nums["Y2"] = nums["Y"] + rng.randint(2, 6)
    for s in slots:
        fill[s] = nums[s] if s in nums else next(it[s[0]])
    return fill


def generate(templates_schedule, rng, render_fn, key_fn, langs=LANGS):
    """Fill each scheduled template, retrying until the item is new in every language."""
    seen = {lang: set() for lang in langs}
    items = []
    for t in templates_schedule:
        for _ in range(200):
            fill = make_fill(t, rng)
            item = render_fn(t, fill)
            keys = {lang: key_fn(item, lang) for lang in langs}
            if all(keys[lang] not in seen[lang] for lang in langs):
                for lang in langs:
                    seen[lang].add(keys[lang])
                items.append(item)
                break
        else:
            raise RuntimeError("could not find a new fill")
    return items


def write_jsonl(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "data"))
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    out = Path(args.out)
    rng = random.Random(args.seed)

    # ---------------- NER ----------------
    n_total = sum(n for _, n in NER_SPLITS)
    n_none = 2 * len(NER_NONE_TEMPLATES)
    reps = -(-(n_total - n_none) // len(NER_TEMPLATES))
    schedule = (NER_TEMPLATES * reps)[: n_total - n_none] + NER_NONE_TEMPLATES * 2
    rng.shuffle(schedule)
    ner_items = generate(
        schedule, rng,
        lambda t, fill: {lang: render(t.text[lang], lang, fill) for lang in LANGS},
        lambda item, lang: surface(item[lang]))
    start = 0
    ner_split_items = {}
    for split, n in NER_SPLITS:
        ner_split_items[split] = ner_items[start:start + n]
        start += n
        for lang in LANGS:
            write_jsonl(out / "ner" / lang / f"{split}.jsonl",
                        [ner_record(it[lang], lang) for it in ner_split_items[split]])

    # ---------------- XNLI ----------------
    n_prem = sum(n for _, n in XNLI_SPLITS)
    reps = -(-n_prem // len(XNLI_TEMPLATES))
    schedule = (XNLI_TEMPLATES * reps)[:n_prem]
    rng.shuffle(schedule)

    def render_x(t, fill):
        item = {}
        for lang in LANGS:
            prem = surface(render(t.text[lang], lang, fill))
            hyps = [(label, surface(render(h[lang], lang, fill))) for label, h in t.hyps]
            item[lang] = (prem, hyps)
        return item

    xnli_items = generate(schedule, rng, render_x, lambda item, lang: item[lang][0])
    start = 0
    xnli_split_items = {}
    for split, n in XNLI_SPLITS:
        group = xnli_split_items[split] = xnli_items[start:start + n]
        start += n
        order = [(i, k) for i in range(len(group)) for k in range(3)]
        rng.shuffle(order)
        for lang in LANGS:
            rows = []
            for i, k in order:
                prem, hyps = group[i][lang]
                label, hyp = hyps[k]
                rows.append({"premise": prem, "hypothesis": hyp, "label": label})
            write_jsonl(out / "xnli" / lang / f"{split}.jsonl", rows)

    # ---------------- parallel ----------------
    aligned = []  # dicts lang -> sentence, in a fixed order
    for split, _ in NER_SPLITS:
        aligned += [{lang: surface(it[lang]) for lang in LANGS} for it in ner_split_items[split]]
    for split, _ in XNLI_SPLITS:
        for it in xnli_split_items[split]:
            aligned.append({lang: it[lang][0] for lang in LANGS})
            for k in range(3):
                aligned.append({lang: it[lang][1][k][1] for lang in LANGS})
    (out / "parallel").mkdir(parents=True, exist_ok=True)
    for lang in LANGS[1:]:
        seen_en, seen_x, lines = set(), set(), []
        for a in aligned:
            en, x = a["en"], a[lang]
            if en in seen_en or x in seen_x:
                continue
            assert "\t" not in en + x and "\n" not in en + x
            seen_en.add(en)
            seen_x.add(x)
            lines.append(f"{en}\t{x}\n")
        with open(out / "parallel" / f"en-{lang}.tsv", "w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)
    pawsx_items = write_pawsx(out, rng)  # last: the rng's earlier draws, and so the files above, stay as they were
    print(f"wrote NER ({len(ner_items)} sentences/lang), XNLI ({len(xnli_items)} premises, "
          f"{3 * len(xnli_items)} pairs/lang), parallel, PAWS-X ({2 * len(pawsx_items)} pairs/lang) to {out}")


def write_pawsx(out: Path, rng: random.Random) -> list:
    """data/pawsx/{en,fr,es}/{split}.jsonl: each source sentence with its paraphrase (1) and its swapped-role
    non-paraphrase (0), in the hub's fields (id, sentence1, sentence2, label); same order in every language."""
    total = sum(n for _, n in PAWSX_SPLITS)
    schedule = (PAWSX_TEMPLATES * -(-total // len(PAWSX_TEMPLATES)))[:total]
    rng.shuffle(schedule)

    def render_pair(t, fill):
        return {lang: (surface(render(t.text[lang], lang, fill)),
                       [(label, surface(render(h[lang], lang, fill))) for label, h in t.hyps])
                for lang in PAWSX_LANGS}

    items = generate(schedule, rng, render_pair, lambda item, lang: item[lang][0], PAWSX_LANGS)
    start = 0
    for split, n in PAWSX_SPLITS:
        group, start = items[start:start + n], start + n
        order = [(i, k) for i in range(len(group)) for k in range(len(PAWSX_PARTS))]
        rng.shuffle(order)
        for lang in PAWSX_LANGS:
            rows = []
            for row_id, (i, k) in enumerate(order, start=1):
                first, seconds = group[i][lang]
                label, second = seconds[k]
                rows.append({"id": row_id, "sentence1": first, "sentence2": second, "label": label})
            write_jsonl(out / "pawsx" / lang / f"{split}.jsonl", rows)
    return items


if __name__ == "__main__":
    main()

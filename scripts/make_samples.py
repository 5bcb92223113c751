#!/usr/bin/env python3
"""Deterministic generator of the small bundled multilingual datasets in data/.

Writes (for en, fr, es, ru, zh):
  data/ner/{lang}/{train,validation,test}.jsonl     WikiANN format
  data/xnli/{lang}/{train,validation,test}.jsonl    XNLI format
  data/parallel/en-{fr,es,ru,zh}.tsv                aligned sentence pairs

All content is synthetic but aligned: each sentence is produced from a template
whose translations are written by hand for the five languages, filled with the
same entities (persons, organisations, cities, countries) and numbers in every
language, so item i of language A is a translation of item i of language B.

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
XNLI_LABELS = ["entailment", "neutral", "contradiction"]
SEED = 1234

# split sizes
NER_SPLITS = [("train", 150), ("validation", 60), ("test", 60)]
XNLI_SPLITS = [("train", 70), ("validation", 25), ("test", 25)]  # premises; x3 pairs each

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


PERSONS = [
    person("f", "Anna Schmidt", "Анна Шмидт", "安娜·施密特"),
    person("m", "Pierre Dubois", "Пьер Дюбуа", "皮埃尔·杜布瓦"),
    person("f", "María López", "Мария Лопес", "玛丽亚·洛佩斯"),
    person("m", "Ivan Petrov", "Иван Петров", "伊万·彼得罗夫"),
    person("m", "Wang Wei", "Ван Вэй", "王伟"),
    person("f", "Li Na", "Ли На", "李娜"),
    person("m", "John Miller", "Джон Миллер", "约翰·米勒"),
    person("f", "Sophie Martin", "Софи Мартен", "索菲·马丁"),
    person("m", "Carlos Ruiz", "Карлос Руис", "卡洛斯·鲁伊斯"),
    person("f", "Elena Smirnova", "Елена Смирнова", "叶莲娜·斯米尔诺娃"),
    person("m", "Thomas Weber", "Томас Вебер", "托马斯·韦伯"),
    person("f", "Laura Bianchi", "Лаура Бьянки", "劳拉·比安奇"),
    person("m", "David Cohen", "Дэвид Коэн", "戴维·科恩"),
    person("f", "Emma Johansson", "Эмма Юханссон", "艾玛·约翰松"),
    person("m", "Kenji Tanaka", "Кэндзи Танака", "田中健二"),
    person("f", "Chen Jing", "Чэнь Цзин", "陈静"),
    person("m", "Lucas Moreau", "Люка Моро", "卢卡·莫罗"),
    person("f", "Olga Ivanova", "Ольга Иванова", "奥尔加·伊万诺娃"),
    person("m", "Ahmed Hassan", "Ахмед Хасан", "艾哈迈德·哈桑"),
    person("f", "Isabel Fernández", "Исабель Фернандес", "伊莎贝尔·费尔南德斯"),
    person("f", "Ana María Torres", "Ана Мария Торрес", "安娜·玛丽亚·托雷斯"),
    person("m", "Jean-Paul Girard", "Жан-Поль Жирар", "让-保罗·吉拉尔"),
]

COUNTRIES = {c.key: c for c in [
    country("FR", "France", ("la [France]", "en [France]", "de [France]"), "Francia",
            ("Франция", "Франции", "Франции"), "法国"),
    country("DE", "Germany", ("l'[Allemagne]", "en [Allemagne]", "d'[Allemagne]"), "Alemania",
            ("Германия", "Германии", "Германии"), "德国"),
    country("JP", "Japan", ("le [Japon]", "au [Japon]", "du [Japon]"), "Japón",
            ("Япония", "Японии", "Японии"), "日本"),
    country("CA", "Canada", ("le [Canada]", "au [Canada]", "du [Canada]"), "Canadá",
            ("Канада", "Канады", "Канаде"), "加拿大"),
    country("IT", "Italy", ("l'[Italie]", "en [Italie]", "d'[Italie]"), "Italia",
            ("Италия", "Италии", "Италии"), "意大利"),
    country("BR", "Brazil", ("le [Brésil]", "au [Brésil]", "du [Brésil]"), "Brasil",
            ("Бразилия", "Бразилии", "Бразилии"), "巴西"),
    country("MX", "Mexico", ("le [Mexique]", "au [Mexique]", "du [Mexique]"), "México",
            ("Мексика", "Мексики", "Мексике"), "墨西哥"),
    country("EG", "Egypt", ("l'[Égypte]", "en [Égypte]", "d'[Égypte]"), "Egipto",
            ("Египет", "Египта", "Египте"), "埃及"),
    country("SE", "Sweden", ("la [Suède]", "en [Suède]", "de [Suède]"), "Suecia",
            ("Швеция", "Швеции", "Швеции"), "瑞典"),
    country("AU", "Australia", ("l'[Australie]", "en [Australie]", "d'[Australie]"), "Australia",
            ("Австралия", "Австралии", "Австралии"), "澳大利亚"),
    country("CN", "China", ("la [Chine]", "en [Chine]", "de [Chine]"), "China",
            ("Китай", "Китая", "Китае"), "中国"),
    country("RU", "Russia", ("la [Russie]", "en [Russie]", "de [Russie]"), "Rusia",
            ("Россия", "России", "России"), "俄罗斯"),
    country("ES", "Spain", ("l'[Espagne]", "en [Espagne]", "d'[Espagne]"), "España",
            ("Испания", "Испании", "Испании"), "西班牙"),
    country("PT", "Portugal", ("le [Portugal]", "au [Portugal]", "du [Portugal]"), "Portugal",
            ("Португалия", "Португалии", "Португалии"), "葡萄牙"),
    country("NO", "Norway", ("la [Norvège]", "en [Norvège]", "de [Norvège]"), "Noruega",
            ("Норвегия", "Норвегии", "Норвегии"), "挪威"),
    country("TR", "Turkey", ("la [Turquie]", "en [Turquie]", "de [Turquie]"), "Turquía",
            ("Турция", "Турции", "Турции"), "土耳其"),
    country("AR", "Argentina", ("l'[Argentine]", "en [Argentine]", "d'[Argentine]"), "Argentina",
            ("Аргентина", "Аргентины", "Аргентине"), "阿根廷"),
    country("PL", "Poland", ("la [Pologne]", "en [Pologne]", "de [Pologne]"), "Polonia",
            ("Польша", "Польши", "Польше"), "波兰"),
    country("AT", "Austria", ("l'[Autriche]", "en [Autriche]", "d'[Autriche]"), "Austria",
            ("Австрия", "Австрии", "Австрии"), "奥地利"),
    country("CH", "Switzerland", ("la [Suisse]", "en [Suisse]", "de [Suisse]"), "Suiza",
            ("Швейцария", "Швейцарии", "Швейцарии"), "瑞士"),
    country("GB", "the [United Kingdom]",
            ("le [Royaume-Uni]", "au [Royaume-Uni]", "du [Royaume-Uni]"),
            ("el [Reino Unido]", "en el [Reino Unido]", "al [Reino Unido]", "del [Reino Unido]"),
            ("Великобритания", "Великобритании", "Великобритании"), "英国"),
    country("US", "the [United States]",
            ("les [États-Unis]", "aux [États-Unis]", "des [États-Unis]"), "Estados Unidos",
            "США", "美国"),
    country("NZ", "New Zealand",
            ("la [Nouvelle-Zélande]", "en [Nouvelle-Zélande]", "de [Nouvelle-Zélande]"),
            "Nueva Zelanda",
            ("Новая Зеландия", "Новой Зеландии", "Новой Зеландии", "Новую Зеландию"), "新西兰"),
    country("KR", "South Korea",
            ("la [Corée du Sud]", "en [Corée du Sud]", "de [Corée du Sud]"), "Corea del Sur",
            ("Южная Корея", "Южной Кореи", "Южной Корее", "Южную Корею"), "韩国"),
]}

CITIES = {c.key: c for c in [
    city("london", "London", "Londres", "Londres", ("Лондон", "Лондона", "Лондоне"), "伦敦", "GB"),
    city("paris", "Paris", "Paris", "París", ("Париж", "Парижа", "Париже"), "巴黎", "FR"),
    city("lyon", "Lyon", "Lyon", "Lyon", ("Лион", "Лиона", "Лионе"), "里昂", "FR"),
    city("berlin", "Berlin", "Berlin", "Berlín", ("Берлин", "Берлина", "Берлине"), "柏林", "DE",
         cold=True),
    city("munich", "Munich", "Munich", "Múnich", ("Мюнхен", "Мюнхена", "Мюнхене"), "慕尼黑", "DE",
         cold=True),
    city("frankfurt", "Frankfurt", "Francfort", "Fráncfort",
         ("Франкфурт", "Франкфурта", "Франкфурте"), "法兰克福", "DE", cold=True),
    city("madrid", "Madrid", "Madrid", "Madrid", ("Мадрид", "Мадрида", "Мадриде"), "马德里", "ES"),
    city("barcelona", "Barcelona", "Barcelone", "Barcelona",
         ("Барселона", "Барселоны", "Барселоне"), "巴塞罗那", "ES"),
    city("seville", "Seville", "Séville", "Sevilla", ("Севилья", "Севильи", "Севилье"), "塞维利亚",
         "ES"),
    city("rome", "Rome", "Rome", "Roma", ("Рим", "Рима", "Риме"), "罗马", "IT"),
    city("milan", "Milan", "Milan", "Milán", ("Милан", "Милана", "Милане"), "米兰", "IT"),
    city("beijing", "Beijing", "Pékin", "Pekín", ("Пекин", "Пекина", "Пекине"), "北京", "CN",
         cold=True),
    city("shanghai", "Shanghai", "Shanghai", "Shanghái", ("Шанхай", "Шанхая", "Шанхае"), "上海",
         "CN"),
    city("shenzhen", "Shenzhen", "Shenzhen", "Shenzhen",
         ("Шэньчжэнь", "Шэньчжэня", "Шэньчжэне"), "深圳", "CN"),
    city("moscow", "Moscow", "Moscou", "Moscú", ("Москва", "Москвы", "Москве"), "莫斯科", "RU",
         cold=True),
    city("kazan", "Kazan", "Kazan", "Kazán", ("Казань", "Казани", "Казани", "Казань"), "喀山", "RU",
         cold=True),
    city("vienna", "Vienna", "Vienne", "Viena", ("Вена", "Вены", "Вене"), "维也纳", "AT", cold=True),
    city("geneva", "Geneva", "Genève", "Ginebra", ("Женева", "Женевы", "Женеве"), "日内瓦", "CH",
         cold=True),
    city("lisbon", "Lisbon", "Lisbonne", "Lisboa", ("Лиссабон", "Лиссабона", "Лиссабоне"), "里斯本",
         "PT"),
    city("warsaw", "Warsaw", "Varsovie", "Varsovia", ("Варшава", "Варшавы", "Варшаве"), "华沙", "PL",
         cold=True),
    city("tokyo", "Tokyo", "Tokyo", "Tokio", "Токио", "东京", "JP"),
    city("sydney", "Sydney", "Sydney", "Sídney", ("Сидней", "Сиднея", "Сиднее"), "悉尼", "AU"),
    city("toronto", "Toronto", "Toronto", "Toronto", "Торонто", "多伦多", "CA", cold=True),
    city("stockholm", "Stockholm", "Stockholm", "Estocolmo",
         ("Стокгольм", "Стокгольма", "Стокгольме"), "斯德哥尔摩", "SE", cold=True),
    city("oslo", "Oslo", "Oslo", "Oslo", "Осло", "奥斯陆", "NO", cold=True),
    city("istanbul", "Istanbul", "Istanbul", "Estambul", ("Стамбул", "Стамбула", "Стамбуле"),
         "伊斯坦布尔", "TR"),
    city("buenosaires", "Buenos Aires", "Buenos Aires", "Buenos Aires",
         ("Буэнос-Айрес", "Буэнос-Айреса", "Буэнос-Айресе"), "布宜诺斯艾利斯", "AR"),
    city("rio", "Rio de Janeiro", "Rio de Janeiro", "Río de Janeiro", "Рио-де-Жанейро",
         "里约热内卢", "BR"),
    city("guadalajara", "Guadalajara", "Guadalajara", "Guadalajara",
         ("Гвадалахара", "Гвадалахары", "Гвадалахаре"), "瓜达拉哈拉", "MX"),
    city("alexandria", "Alexandria", "Alexandrie", "Alejandría",
         ("Александрия", "Александрии", "Александрии"), "亚历山大港", "EG"),
    city("auckland", "Auckland", "Auckland", "Auckland", ("Окленд", "Окленда", "Окленде"), "奥克兰",
         "NZ"),
    city("newyork", "New York", "New York", "Nueva York", ("Нью-Йорк", "Нью-Йорка", "Нью-Йорке"),
         "纽约", "US"),
    city("losangeles", "Los Angeles", "Los Angeles", "Los Ángeles",
         ("Лос-Анджелес", "Лос-Анджелеса", "Лос-Анджелесе"), "洛杉矶", "US"),
    city("seoul", "Seoul", "Séoul", "Seúl", ("Сеул", "Сеула", "Сеуле"), "首尔", "KR", cold=True),
]}

ORGS = [  # hq only where the headquarters really are in that city
    org("Siemens", "Siemens", "西门子", hq="munich"),
    org("Airbus", "Airbus", "空中客车"),
    org("Renault", "Renault", "雷诺"),
    org("Nestlé", "Nestlé", "雀巢"),
    org("Philips", "Philips", "飞利浦"),
    org("Huawei", "Huawei", "华为", hq="shenzhen"),
    org("Lenovo", "Lenovo", "联想", hq="beijing"),
    org("Sony", "Sony", "索尼", hq="tokyo"),
    org("Samsung", "Samsung", "三星", hq="seoul"),
    org("Ericsson", "Ericsson", "爱立信", hq="stockholm"),
    org("Michelin", "Michelin", "米其林"),
    org("Telefónica", "Telefónica", "西班牙电信", hq="madrid"),
    org("Deutsche Bank", "Deutsche Bank", "德意志银行", kind="bank", hq="frankfurt"),
    org("Air France", "Air France", "法国航空", kind="airline"),
    org("Aeroflot", "«[Аэрофлот]»", "俄罗斯航空", kind="airline", hq="moscow"),
    org("General Electric", "General Electric", "通用电气"),
    org("China Mobile", "China Mobile", "中国移动", hq="beijing"),
    org("Volkswagen", "Volkswagen", "大众汽车"),
]


# --------------------------------------------------------------------------------------
# Template language
#   {P1} {P1.form}   entity slot (P=person, O=organisation, C=city, L=country)
#   {N} {M} {H} {Y} {Y2}   numbers;  {N:one|few|many}  Russian numeral agreement
#   <P1:masc|fem>  <O1:masc|fem|neut>   choice by the slot's grammatical gender
# --------------------------------------------------------------------------------------
class T:
    def __init__(self, en, fr, es, ru, zh, *, hyps=None, paired=False, hq=False,
                 cold=False, n=(2, 9), y=(1975, 2015)):
        self.text = dict(en=en, fr=fr, es=es, ru=ru, zh=zh)
        self.hyps = hyps  # XNLI: [(label, {lang: text})]
        self.paired = paired  # L1 is the country of C1
        self.hq = hq  # C1 is the headquarters city of O1
        self.cold = cold  # C slots only from cold-climate cities
        self.n = n
        self.y = y  # range of {Y}
        strings = list(self.text.values())
        for _, h in hyps or []:
            strings += list(h.values())
        self.slots = sorted(set(re.findall(r"[{<]([A-Z]\d?)\b", " ".join(strings))))


def H(en, fr, es, ru, zh):
    return dict(en=en, fr=fr, es=es, ru=ru, zh=zh)


def X(premise, ent, neu, con, **kw):
    return T(*premise, hyps=[(0, H(*ent)), (1, H(*neu)), (2, H(*con))], **kw)


NER_TEMPLATES = [
    T("{P1} was born in {C1} in {Y}.",
      "{P1} est <P1:né|née> {C1.in} en {Y}.",
      "{P1} nació {C1.in} en {Y}.",
      "{P1} <P1:родился|родилась> {C1.in} в {Y} году.",
      "{P1}于{Y}年出生于{C1}。", y=(1940, 1995)),
    T("{P1} works for {O1} in {C1}.",
      "{P1} travaille pour {O1} {C1.in}.",
      "{P1} trabaja para {O1} {C1.in}.",
      "{P1} работает в {O1.prep} {C1.in}.",
      "{P1}在{C1}为{O1}工作。"),
    T("{O1} has opened a new office in {C1}.",
      "{O1} a ouvert un nouveau bureau {C1.in}.",
      "{O1} ha abierto una nueva oficina {C1.in}.",
      "{O1.nom} <O1:открыл|открыла> новый офис {C1.in}.",
      "{O1}在{C1}开设了新的办事处。"),
    T("Last year {P1} moved from {C1} to {C2}.",
      "L'année dernière, {P1} a déménagé {C1.from} {C2.to}.",
      "El año pasado, {P1} se mudó {C1.from} {C2.to}.",
      "В прошлом году {P1} <P1:переехал|переехала> {C1.from} {C2.to}.",
      "去年，{P1}从{C1}搬到了{C2}。"),
    T("The conference took place in {C1} in {Y}.",
      "La conférence a eu lieu {C1.in} en {Y}.",
      "La conferencia se celebró {C1.in} en {Y}.",
      "Конференция прошла {C1.in} в {Y} году.",
      "会议于{Y}年在{C1}举行。"),
    T("{P1} is an engineer at {O1}.",
      "{P1} est <P1:ingénieur|ingénieure> chez {O1}.",
      "{P1} es <P1:ingeniero|ingeniera> en {O1}.",
      "{P1} — инженер {O1.gen}.",
      "{P1}是{O1}的一名工程师。"),
    T("{P1} and {P2} met in {C1}.",
      "{P1} a rencontré {P2} {C1.in}.",
      "{P1} se reunió con {P2} {C1.in}.",
      "{P1} и {P2} встретились {C1.in}.",
      "{P1}和{P2}在{C1}见了面。"),
    T("{O1} has its headquarters in {C1}.",
      "Le siège {O1.of} se trouve {C1.in}.",
      "La sede de {O1} se encuentra {C1.in}.",
      "Штаб-квартира {O1.gen} находится {C1.in}.",
      "{O1}的总部位于{C1}。", hq=True),
    T("{P1} studied history in {C1} before returning to {L1}.",
      "{P1} a étudié l'histoire {C1.in} avant de retourner {L1.to}.",
      "{P1} estudió historia {C1.in} antes de regresar {L1.to}.",
      "{P1} <P1:изучал|изучала> историю {C1.in}, а затем <P1:вернулся|вернулась> {L1.to}.",
      "{P1}曾在{C1}学习历史，后来回到了{L1}。"),
    T("{O1} and {O2} signed an agreement in {C1}.",
      "{O1} et {O2} ont signé un accord {C1.in}.",
      "{O1} y {O2} firmaron un acuerdo {C1.in}.",
      "{O1.bare} и {O2.bare} подписали соглашение {C1.in}.",
      "{O1}与{O2}在{C1}签署了一项协议。"),
    T("Tourists from {L1} often visit {C1}.",
      "Les touristes venus {L1.from} visitent souvent {C1}.",
      "Los turistas {L1.from} visitan a menudo {C1}.",
      "Туристы {L1.from} часто посещают {C1.acc}.",
      "来自{L1}的游客经常游览{C1}。"),
    T("{P1} joined {O1} in {Y}.",
      "{P1} a rejoint {O1} en {Y}.",
      "{P1} se incorporó a {O1} en {Y}.",
      "{P1} <P1:пришёл|пришла> в {O1.acc} в {Y} году.",
      "{P1}于{Y}年加入{O1}。"),
    T("{C1} is one of the largest cities in {L1}.",
      "{C1} est l'une des plus grandes villes {L1.of}.",
      "{C1} es una de las ciudades más grandes {L1.of}.",
      "{C1} — один из крупнейших городов {L1.gen}.",
      "{C1}是{L1}最大的城市之一。", paired=True),
    T("{P1} is a well-known writer from {C1}.",
      "{P1} est <P1:un écrivain célèbre|une écrivaine célèbre> originaire {C1.of}.",
      "{P1} es <P1:un conocido escritor|una conocida escritora> {C1.of}.",
      "{P1} — <P1:известный писатель|известная писательница> {C1.from}.",
      "{P1}是来自{C1}的知名作家。"),
    T("On Monday {O1} announced record profits.",
      "Lundi, {O1} a annoncé des bénéfices records.",
      "El lunes, {O1} anunció unos beneficios récord.",
      "В понедельник {O1.nom} <O1:объявил|объявила> о рекордной прибыли.",
      "{O1}周一宣布利润创下历史新高。"),
    T("{P1} announced in {C1} that {O1} would hire {H} new employees.",
      "{P1} a annoncé {C1.in} {O1.que} allait recruter {H} nouveaux salariés.",
      "{P1} anunció {C1.in} que {O1} contrataría a {H} nuevos empleados.",
      "{P1} <P1:заявил|заявила> {C1.in}, что {O1.nom} наймёт {H} новых сотрудников.",
      "{P1}在{C1}宣布，{O1}将招聘{H}名新员工。"),
    T("{P1} played for a club in {C1} for {N} years.",
      "{P1} a joué pendant {N} ans dans un club {C1.of}.",
      "{P1} jugó durante {N} años en un club {C1.of}.",
      "{P1} {N:год|года|лет} <P1:играл|играла> за клуб {C1.from}.",
      "{P1}曾在{C1}的一家俱乐部效力{N}年。"),
    T("{P1}, a spokesperson for {O1}, declined to comment.",
      "{P1}, porte-parole {O1.of}, n'a pas souhaité faire de commentaire.",
      "{P1}, portavoz de {O1}, declinó hacer comentarios.",
      "{P1}, представитель {O1.gen}, <P1:отказался|отказалась> от комментариев.",
      "{O1}发言人{P1}拒绝置评。"),
    T("The flight from {C1} to {C2} was cancelled.",
      "Le vol {C1.from} {C2.to} a été annulé.",
      "El vuelo {C1.from} {C2.to} fue cancelado.",
      "Рейс {C1.from} {C2.to} был отменён.",
      "从{C1}飞往{C2}的航班被取消了。"),
    T("On Tuesday {P1} gave a lecture in {C1}.",
      "Mardi, {P1} a donné une conférence {C1.in}.",
      "El martes, {P1} dio una conferencia {C1.in}.",
      "Во вторник {P1} <P1:прочитал|прочитала> лекцию {C1.in}.",
      "周二，{P1}在{C1}做了一场讲座。"),
    T("{P1} and {P2} wrote a book about {L1}.",
      "{P1} et {P2} ont écrit un livre sur {L1}.",
      "{P1} y {P2} escribieron un libro sobre {L1}.",
      "{P1} и {P2} написали книгу {L1.about}.",
      "{P1}和{P2}合写了一本关于{L1}的书。"),
    T("{O1} operates in {L1} and {L2}.",
      "{O1} est présent {L1.in} et {L2.in}.",
      "{O1} opera {L1.in} y {L2.in}.",
      "{O1.nom} работает {L1.in} и {L2.in}.",
      "{O1}在{L1}和{L2}开展业务。"),
    T("{P1} arrived in {C1} on Friday.",
      "{P1} est <P1:arrivé|arrivée> {C1.to} vendredi.",
      "{P1} llegó {C1.to} el viernes.",
      "В пятницу {P1} <P1:прибыл|прибыла> {C1.to}.",
      "{P1}于周五抵达{C1}。"),
    T("Director {P1} shot scenes in {C1} and {C2}.",
      "<P1:Le réalisateur|La réalisatrice> {P1} a tourné des scènes {C1.in} et {C2.in}.",
      "<P1:El director|La directora> {P1} rodó escenas {C1.in} y {C2.in}.",
      "Режиссёр {P1} <P1:снимал|снимала> сцены {C1.in} и {C2.in}.",
      "导演{P1}在{C1}和{C2}拍摄了多个场景。"),
    T("{P1} has lived in {L1} since {Y}.",
      "{P1} vit {L1.in} depuis {Y}.",
      "{P1} vive {L1.in} desde {Y}.",
      "{P1} живёт {L1.in} с {Y} года.",
      "{P1}自{Y}年起一直住在{L1}。"),
    T("{O1} plans to build a new training centre near {C1}.",
      "{O1} prévoit de construire un nouveau centre de formation près {C1.of}.",
      "{O1} planea construir un nuevo centro de formación cerca {C1.of}.",
      "{O1.nom} <O1:планирует|планирует> построить новый учебный центр недалеко от {C1.gen}.",
      "{O1}计划在{C1}附近建造一个新的培训中心。"),
    T("{P1} teaches physics at a university in {C1}.",
      "{P1} enseigne la physique dans une université {C1.of}.",
      "{P1} enseña física en una universidad {C1.of}.",
      "{P1} преподаёт физику в одном из университетов {C1.gen}.",
      "{P1}在{C1}的一所大学教授物理。"),
    T("Shares in {O1} fell by {N} percent.",
      "L'action {O1.of} a reculé de {N} %.",
      "Las acciones de {O1} cayeron un {N} %.",
      "Акции {O1.gen} подешевели на {N:процент|процента|процентов}.",
      "{O1}的股价下跌了{N}%。"),
    T("{P1} and {P2} founded a small company in {C1}.",
      "{P1} et {P2} ont fondé une petite entreprise {C1.in}.",
      "{P1} y {P2} fundaron una pequeña empresa {C1.in}.",
      "{P1} и {P2} основали небольшую компанию {C1.in}.",
      "{P1}和{P2}在{C1}创办了一家小公司。"),
    T("Last summer {P1} travelled around {L1} by train.",
      "L'été dernier, {P1} a parcouru {L1} en train.",
      "El verano pasado, {P1} recorrió {L1} en tren.",
      "Прошлым летом {P1} <P1:объехал|объехала> {L1.acc} на поезде.",
      "去年夏天，{P1}乘火车游遍了{L1}。"),
    T("{P1} left {O1} after {N} years.",
      "{P1} a quitté {O1} au bout de {N} ans.",
      "{P1} dejó {O1} tras {N} años.",
      "{P1} <P1:ушёл|ушла> из {O1.gen} спустя {N:год|года|лет}.",
      "{P1}在{O1}工作{N}年后离开了公司。"),
    T("{P1} ran a marathon in {C1}.",
      "{P1} a couru un marathon {C1.in}.",
      "{P1} corrió un maratón {C1.in}.",
      "{P1} <P1:пробежал|пробежала> марафон {C1.in}.",
      "{P1}在{C1}跑了一场马拉松。"),
    T("Many students from {L1} study in {C1}.",
      "De nombreux étudiants venus {L1.from} font leurs études {C1.in}.",
      "Muchos estudiantes {L1.from} estudian {C1.in}.",
      "Многие студенты {L1.from} учатся {C1.in}.",
      "许多来自{L1}的学生在{C1}求学。"),
    T("{O1} is one of the largest employers in {C1}.",
      "{O1} est l'un des plus grands employeurs {C1.of}.",
      "{O1} es uno de los mayores empleadores {C1.of}.",
      "{O1.nom} — один из крупнейших работодателей {C1.gen}.",
      "{O1}是{C1}最大的雇主之一。", hq=True),
    T("{P1} was appointed ambassador to {L1}.",
      "{P1} a été <P1:nommé ambassadeur|nommée ambassadrice> {L1.in}.",
      "{P1} fue <P1:nombrado embajador|nombrada embajadora> {L1.in}.",
      "{P1} <P1:был назначен|была назначена> послом {L1.in}.",
      "{P1}被任命为驻{L1}大使。"),
    T("{P1} spent {N} weeks in {C1} and {C2}.",
      "{P1} a passé {N} semaines {C1.in} et {C2.in}.",
      "{P1} pasó {N} semanas {C1.in} y {C2.in}.",
      "{P1} <P1:провёл|провела> {N:неделю|недели|недель} {C1.in} и {C2.in}.",
      "{P1}在{C1}和{C2}待了{N}周。"),
    T("An exhibition of photographs by {P1} has opened in {C1}.",
      "Une exposition de photographies {P1.of} a ouvert ses portes {C1.in}.",
      "{C1.in} se ha inaugurado una exposición de fotografías de {P1}.",
      "{C1.in} открылась выставка фотографий, автор которых — {P1}.",
      "{P1}的摄影展在{C1}开幕。"),
    T("{O1} and {O2} compete with each other in {L1}.",
      "{O1} et {O2} se font concurrence {L1.in}.",
      "{O1} y {O2} compiten entre sí {L1.in}.",
      "{O1.bare} и {O2.bare} конкурируют друг с другом {L1.in}.",
      "{O1}和{O2}在{L1}相互竞争。"),
    T("{P1} bought a house near {C1}.",
      "{P1} a acheté une maison près {C1.of}.",
      "{P1} compró una casa cerca {C1.of}.",
      "{P1} <P1:купил|купила> дом недалеко от {C1.gen}.",
      "{P1}在{C1}附近买了一栋房子。"),
    T("{P1} and {P2} discussed the future of {O1}.",
      "{P1} et {P2} ont discuté de l'avenir {O1.of}.",
      "{P1} y {P2} hablaron sobre el futuro de {O1}.",
      "{P1} и {P2} обсудили будущее {O1.gen}.",
      "{P1}和{P2}讨论了{O1}的未来。"),
    T("The new {O1} office in {C1} opened on Saturday.",
      "Le nouveau bureau {O1.of} {C1.in} a ouvert samedi.",
      "La nueva oficina de {O1} {C1.in} abrió el sábado.",
      "Новый офис {O1.gen} {C1.in} открылся в субботу.",
      "{O1}位于{C1}的新办事处于周六启用。"),
    T("{P1} coaches the national team of {L1}.",
      "{P1} entraîne l'équipe nationale {L1.of}.",
      "{P1} entrena a la selección nacional {L1.of}.",
      "{P1} тренирует сборную {L1.gen}.",
      "{P1}执教{L1}国家队。"),
    T("{P1} grew up in a small village near {C1}.",
      "{P1} a grandi dans un petit village près {C1.of}.",
      "{P1} creció en un pequeño pueblo cerca {C1.of}.",
      "{P1} <P1:вырос|выросла> в небольшой деревне недалеко от {C1.gen}.",
      "{P1}在{C1}附近的一个小村庄长大。"),
    T("{C1} hosted the championship in {Y}.",
      "{C1} a accueilli le championnat en {Y}.",
      "{C1} acogió el campeonato en {Y}.",
      "В {Y} году чемпионат прошёл {C1.in}.",
      "{C1}于{Y}年举办了锦标赛。"),
    T("{P1}, who comes from {L1}, has worked for {O1} in {C1} since {Y}.",
      "Originaire {L1.of}, {P1} travaille pour {O1} {C1.in} depuis {Y}.",
      "{P1}, natural {L1.of}, trabaja para {O1} {C1.in} desde {Y}.",
      "{P1}, <P1:уроженец|уроженка> {L1.gen}, работает в {O1.prep} {C1.in} с {Y} года.",
      "来自{L1}的{P1}自{Y}年起在{C1}为{O1}工作。"),
    T("{P1} and {P2} work in the same department at {O1}.",
      "{P1} et {P2} travaillent dans le même service chez {O1}.",
      "{P1} y {P2} trabajan en el mismo departamento de {O1}.",
      "{P1} и {P2} работают в одном отделе {O1.gen}.",
      "{P1}和{P2}在{O1}的同一个部门工作。"),
]

NER_NONE_TEMPLATES = [  # sentences without any entity
    T("The meeting lasted {N} hours.",
      "La réunion a duré {N} heures.",
      "La reunión duró {N} horas.",
      "Совещание длилось {N:час|часа|часов}.",
      "会议持续了{N}个小时。"),
    T("The museum was closed for {N} days.",
      "Le musée a été fermé pendant {N} jours.",
      "El museo estuvo cerrado durante {N} días.",
      "Музей был закрыт {N:день|дня|дней}.",
      "博物馆关闭了{N}天。", n=(2, 30)),
    T("The bridge was built in {Y}.",
      "Le pont a été construit en {Y}.",
      "El puente fue construido en {Y}.",
      "Мост был построен в {Y} году.",
      "这座桥建于{Y}年。"),
    T("More than {H} people attended the concert.",
      "Plus de {H} personnes ont assisté au concert.",
      "Más de {H} personas asistieron al concierto.",
      "На концерте присутствовали более {H} человек.",
      "超过{H}人参加了音乐会。"),
    T("Prices rose by {N} percent last year.",
      "Les prix ont augmenté de {N} % l'année dernière.",
      "Los precios subieron un {N} % el año pasado.",
      "В прошлом году цены выросли на {N:процент|процента|процентов}.",
      "去年物价上涨了{N}%。"),
    T("The film was released in {Y}.",
      "Le film est sorti en {Y}.",
      "La película se estrenó en {Y}.",
      "Фильм вышел в {Y} году.",
      "这部电影于{Y}年上映。"),
    T("The team won {N} matches this season.",
      "L'équipe a remporté {N} matchs cette saison.",
      "El equipo ganó {N} partidos esta temporada.",
      "В этом сезоне команда выиграла {N:матч|матча|матчей}.",
      "本赛季该队赢得了{N}场比赛。", n=(5, 25)),
]

XNLI_TEMPLATES = [
    X(("On Saturday, {P1} bought {N} books at a market in {C1}.",
       "Samedi, {P1} a acheté {N} livres sur un marché {C1.in}.",
       "El sábado, {P1} compró {N} libros en un mercado {C1.of}.",
       "В субботу {P1} <P1:купил|купила> {N:книгу|книги|книг} на рынке {C1.in}.",
       "周六，{P1}在{C1}的一个市场上买了{N}本书。"),
      ("{P1} bought books in {C1}.",
       "{P1} a acheté des livres {C1.in}.",
       "{P1} compró libros {C1.in}.",
       "{P1} <P1:купил|купила> книги {C1.in}.",
       "{P1}在{C1}买了书。"),
      ("{P1} bought the books as presents for friends.",
       "{P1} a acheté ces livres pour les offrir à des amis.",
       "{P1} compró los libros para regalárselos a unos amigos.",
       "{P1} <P1:купил|купила> эти книги в подарок друзьям.",
       "{P1}买这些书是为了送给朋友。"),
      ("{P1} bought the books at a market in {C2}.",
       "{P1} a acheté ces livres sur un marché {C2.in}.",
       "{P1} compró los libros en un mercado {C2.of}.",
       "{P1} <P1:купил|купила> эти книги на рынке {C2.in}.",
       "{P1}是在{C2}的一个市场上买的这些书。"), n=(3, 9)),
    X(("The city museum in {C1} was full of visitors all day.",
       "Le musée municipal {C1.of} a été rempli de visiteurs toute la journée.",
       "El museo municipal {C1.of} estuvo lleno de visitantes todo el día.",
       "Городской музей {C1.in} весь день был полон посетителей.",
       "{C1}市立博物馆一整天都挤满了游客。"),
      ("Many people visited the city museum in {C1}.",
       "Beaucoup de gens ont visité le musée municipal {C1.of}.",
       "Mucha gente visitó el museo municipal {C1.of}.",
       "Городской музей {C1.in} посетило много людей.",
       "很多人参观了{C1}市立博物馆。"),
      ("Admission to the city museum in {C1} is free on Sundays.",
       "L'entrée du musée municipal {C1.of} est gratuite le dimanche.",
       "La entrada al museo municipal {C1.of} es gratuita los domingos.",
       "По воскресеньям вход в городской музей {C1.in} бесплатный.",
       "{C1}市立博物馆周日免费开放。"),
      ("The city museum in {C1} was almost empty all day.",
       "Le musée municipal {C1.of} est resté presque vide toute la journée.",
       "El museo municipal {C1.of} estuvo casi vacío todo el día.",
       "Городской музей {C1.in} весь день был почти пуст.",
       "{C1}市立博物馆一整天几乎空无一人。")),
    X(("{P1} has worked at {O1} since {Y}.",
       "{P1} travaille chez {O1} depuis {Y}.",
       "{P1} trabaja en {O1} desde {Y}.",
       "{P1} работает в {O1.prep} с {Y} года.",
       "{P1}自{Y}年起一直在{O1}工作。"),
      ("{P1} is an employee of {O1}.",
       "{P1} est <P1:salarié|salariée> {O1.of}.",
       "{P1} es <P1:empleado|empleada> de {O1}.",
       "{P1} — <P1:сотрудник|сотрудница> {O1.gen}.",
       "{P1}是{O1}的员工。"),
      ("{P1} plans to leave {O1} next year.",
       "{P1} compte quitter {O1} l'année prochaine.",
       "{P1} piensa dejar {O1} el año que viene.",
       "{P1} собирается уйти из {O1.gen} в следующем году.",
       "{P1}打算明年离开{O1}。"),
      ("{P1} started working at {O1} in {Y2}.",
       "{P1} a commencé à travailler chez {O1} en {Y2}.",
       "{P1} empezó a trabajar en {O1} en {Y2}.",
       "{P1} <P1:начал|начала> работать в {O1.prep} в {Y2} году.",
       "{P1}是{Y2}年才开始在{O1}工作的。")),
    X(("Because of the snow, the train from {C1} arrived {N} minutes late.",
       "À cause de la neige, le train en provenance {C1.of} est arrivé avec {N} minutes de retard.",
       "Por culpa de la nieve, el tren procedente {C1.of} llegó con {N} minutos de retraso.",
       "Из-за снега поезд {C1.from} опоздал на {N:минуту|минуты|минут}.",
       "由于下雪，从{C1}开来的火车晚点了{N}分钟。"),
      ("The train from {C1} was delayed.",
       "Le train en provenance {C1.of} a eu du retard.",
       "El tren procedente {C1.of} llegó tarde.",
       "Поезд {C1.from} пришёл с опозданием.",
       "从{C1}开来的火车晚点了。"),
      ("The train from {C1} was full of tourists.",
       "Le train en provenance {C1.of} était rempli de touristes.",
       "El tren procedente {C1.of} iba lleno de turistas.",
       "Поезд {C1.from} был полон туристов.",
       "从{C1}开来的火车上挤满了游客。"),
      ("The train from {C1} arrived exactly on time.",
       "Le train en provenance {C1.of} est arrivé parfaitement à l'heure.",
       "El tren procedente {C1.of} llegó puntualmente.",
       "Поезд {C1.from} прибыл точно по расписанию.",
       "从{C1}开来的火车准时到达。"), n=(10, 50)),
    X(("{P1} is a doctor and has worked in a hospital in {C1} for {N} years.",
       "{P1} est médecin et travaille depuis {N} ans dans un hôpital {C1.in}.",
       "{P1} es <P1:médico|médica> y lleva {N} años trabajando en un hospital {C1.of}.",
       "{P1} — врач и уже {N:год|года|лет} работает в больнице {C1.in}.",
       "{P1}是一名医生，已经在{C1}的一家医院工作了{N}年。"),
      ("{P1} works in medicine.",
       "{P1} exerce dans le domaine médical.",
       "{P1} trabaja en el ámbito de la medicina.",
       "{P1} работает в сфере медицины.",
       "{P1}从事医疗工作。"),
      ("{P1} studied medicine in {C2}.",
       "{P1} a fait ses études de médecine {C2.in}.",
       "{P1} estudió medicina {C2.in}.",
       "{P1} <P1:изучал|изучала> медицину {C2.in}.",
       "{P1}曾在{C2}学医。"),
      ("{P1} has never worked in a hospital.",
       "{P1} n'a jamais travaillé dans un hôpital.",
       "{P1} nunca ha trabajado en un hospital.",
       "{P1} никогда не <P1:работал|работала> в больнице.",
       "{P1}从未在医院工作过。"), n=(3, 20)),
    X(("{O1} reported that its profits doubled last year.",
       "{O1} a annoncé que ses bénéfices avaient doublé l'année dernière.",
       "{O1} informó de que sus beneficios se duplicaron el año pasado.",
       "{O1.nom} <O1:сообщил|сообщила>, что в прошлом году <O1:его|её> прибыль выросла вдвое.",
       "{O1}称其去年的利润翻了一番。"),
      ("{O1} earned more money last year than the year before.",
       "{O1} a gagné plus d'argent l'année dernière que l'année précédente.",
       "{O1} ganó más dinero el año pasado que el año anterior.",
       "В прошлом году {O1.nom} <O1:заработал|заработала> больше, чем годом ранее.",
       "{O1}去年赚的钱比前年多。"),
      ("{O1} plans to hire more staff next year.",
       "{O1} prévoit d'embaucher davantage de personnel l'année prochaine.",
       "{O1} prevé contratar más personal el próximo año.",
       "{O1.nom} планирует нанять больше сотрудников в следующем году.",
       "{O1}计划明年招聘更多员工。"),
      ("{O1} reported a sharp fall in profits last year.",
       "{O1} a annoncé une forte baisse de ses bénéfices l'année dernière.",
       "{O1} informó de una fuerte caída de sus beneficios el año pasado.",
       "{O1.nom} <O1:сообщил|сообщила> о резком падении прибыли в прошлом году.",
       "{O1}称其去年的利润大幅下降。")),
    X(("On Sunday morning, {P1} ran {N} kilometres.",
       "Dimanche matin, {P1} a couru {N} kilomètres.",
       "El domingo por la mañana, {P1} corrió {N} kilómetros.",
       "В воскресенье утром {P1} <P1:пробежал|пробежала> {N:километр|километра|километров}.",
       "周日上午，{P1}跑了{N}公里。"),
      ("{P1} went running on Sunday.",
       "{P1} est <P1:allé|allée> courir dimanche.",
       "{P1} salió a correr el domingo.",
       "В воскресенье {P1} <P1:выходил|выходила> на пробежку.",
       "{P1}周日去跑步了。"),
      ("{P1} is training for a marathon.",
       "{P1} s'entraîne pour un marathon.",
       "{P1} se está preparando para un maratón.",
       "{P1} готовится к марафону.",
       "{P1}正在为马拉松做准备。"),
      ("{P1} stayed in bed all Sunday morning.",
       "{P1} est <P1:resté|restée> au lit tout le dimanche matin.",
       "{P1} se quedó en la cama toda la mañana del domingo.",
       "{P1} всё воскресное утро <P1:провёл|провела> в постели.",
       "{P1}周日整个上午都躺在床上。"), n=(5, 21)),
    X(("{P1} and {P2} have been friends since their school days in {C1}.",
       "L'amitié entre {P1} et {P2} remonte à leurs années d'école {C1.in}.",
       "La amistad entre {P1} y {P2} viene de sus años de colegio {C1.in}.",
       "{P1} и {P2} дружат со школьных лет, когда они вместе учились {C1.in}.",
       "{P1}和{P2}在{C1}上学时就是朋友了。"),
      ("{P1} and {P2} know each other.",
       "{P1} et {P2} se connaissent.",
       "{P1} y {P2} se conocen.",
       "{P1} и {P2} знакомы друг с другом.",
       "{P1}和{P2}彼此认识。"),
      ("{P1} and {P2} now live on the same street.",
       "{P1} et {P2} habitent aujourd'hui dans la même rue.",
       "{P1} y {P2} viven ahora en la misma calle.",
       "Сейчас {P1} и {P2} живут на одной улице.",
       "{P1}和{P2}现在住在同一条街上。"),
      ("{P1} met {P2} for the first time last week.",
       "C'est la semaine dernière que {P1} a rencontré {P2} pour la première fois.",
       "{P1} conoció a {P2} la semana pasada.",
       "{P1} и {P2} впервые познакомились на прошлой неделе.",
       "{P1}和{P2}上周才第一次见面。")),
    X(("{P1} missed the flight to {C1} because the taxi got stuck in traffic.",
       "{P1} a raté son vol pour {C1} parce que le taxi était coincé dans les embouteillages.",
       "{P1} perdió el vuelo {C1.to} porque el taxi se quedó atascado en el tráfico.",
       "{P1} <P1:опоздал|опоздала> на рейс {C1.to}, потому что такси застряло в пробке.",
       "由于出租车堵在路上，{P1}错过了飞往{C1}的航班。"),
      ("{P1} did not catch the flight to {C1}.",
       "{P1} n'a pas pris son vol pour {C1}.",
       "{P1} no tomó el vuelo {C1.to}.",
       "{P1} не <P1:успел|успела> на рейс {C1.to}.",
       "{P1}没有赶上飞往{C1}的航班。"),
      ("{P1} had to buy a new ticket to {C1}.",
       "{P1} a dû acheter un nouveau billet pour {C1}.",
       "{P1} tuvo que comprar un billete nuevo {C1.to}.",
       "{P1} <P1:был вынужден|была вынуждена> купить новый билет {C1.to}.",
       "{P1}不得不重新买一张去{C1}的机票。"),
      ("{P1} reached the airport early and boarded the flight to {C1}.",
       "{P1} est <P1:arrivé|arrivée> en avance à l'aéroport et a embarqué sur son vol pour {C1}.",
       "{P1} llegó temprano al aeropuerto y embarcó en el vuelo {C1.to}.",
       "{P1} <P1:приехал|приехала> в аэропорт заранее и <P1:сел|села> на рейс {C1.to}.",
       "{P1}提前到达机场，登上了飞往{C1}的航班。")),
    X(("The concert in {C1} was cancelled because the singer was ill.",
       "Le concert prévu {C1.in} a été annulé parce que le chanteur était malade.",
       "El concierto {C1.in} se canceló porque el cantante estaba enfermo.",
       "Концерт {C1.in} отменили из-за болезни певца.",
       "由于歌手生病，{C1}的音乐会被取消了。"),
      ("The concert in {C1} did not take place.",
       "Le concert {C1.in} n'a pas eu lieu.",
       "El concierto {C1.in} no se celebró.",
       "Концерт {C1.in} не состоялся.",
       "{C1}的音乐会没有举行。"),
      ("The concert in {C1} will be held next month instead.",
       "Le concert {C1.in} sera reporté au mois prochain.",
       "El concierto {C1.in} se celebrará el mes que viene.",
       "Концерт {C1.in} перенесут на следующий месяц.",
       "{C1}的音乐会将改在下个月举行。"),
      ("The concert in {C1} went ahead as planned.",
       "Le concert {C1.in} s'est déroulé comme prévu.",
       "El concierto {C1.in} se celebró según lo previsto.",
       "Концерт {C1.in} прошёл, как и планировалось.",
       "{C1}的音乐会按计划如期举行。")),
    X(("{P1} grew up with two brothers and a sister.",
       "{P1} a grandi avec deux frères et une sœur.",
       "{P1} creció con dos hermanos y una hermana.",
       "{P1} <P1:вырос|выросла> вместе с двумя братьями и сестрой.",
       "{P1}是和两个兄弟、一个姐妹一起长大的。"),
      ("{P1} has siblings.",
       "{P1} a des frères et sœurs.",
       "{P1} tiene hermanos.",
       "{P1} — не единственный ребёнок в семье.",
       "{P1}有兄弟姐妹。"),
      ("{P1} is the youngest child in the family.",
       "{P1} est <P1:le cadet|la cadette> de la famille.",
       "{P1} es <P1:el menor|la menor> de los hermanos.",
       "{P1} — самый младший ребёнок в семье.",
       "{P1}是家里最小的孩子。"),
      ("{P1} is an only child.",
       "{P1} est <P1:fils unique|fille unique>.",
       "{P1} es <P1:hijo único|hija única>.",
       "{P1} — единственный ребёнок в семье.",
       "{P1}是独生<P1:子|女>。")),
    X(("The price of the tickets rose from {N} to {M} euros.",
       "Le prix des billets est passé de {N} à {M} euros.",
       "El precio de las entradas subió de {N} a {M} euros.",
       "Цена билетов выросла с {N} до {M} евро.",
       "门票价格从{N}欧元涨到了{M}欧元。"),
      ("The tickets became more expensive.",
       "Les billets sont devenus plus chers.",
       "Las entradas se encarecieron.",
       "Билеты подорожали.",
       "门票变贵了。"),
      ("Fewer people bought tickets after the price rise.",
       "Moins de gens ont acheté des billets après la hausse des prix.",
       "Menos gente compró entradas tras la subida del precio.",
       "После повышения цены билеты стали покупать реже.",
       "涨价后买票的人变少了。"),
      ("The tickets became cheaper.",
       "Les billets sont devenus moins chers.",
       "Las entradas se abarataron.",
       "Билеты подешевели.",
       "门票变便宜了。"), n=(10, 40)),
    X(("{P1} wrote a novel set in {C1} during the war.",
       "{P1} a écrit un roman qui se déroule {C1.in} pendant la guerre.",
       "{P1} escribió una novela ambientada {C1.in} durante la guerra.",
       "{P1} <P1:написал|написала> роман, действие которого происходит {C1.in} во время войны.",
       "{P1}写了一部以战争时期的{C1}为背景的小说。"),
      ("{P1} is the author of a novel.",
       "{P1} est <P1:l'auteur|l'autrice> d'un roman.",
       "{P1} es <P1:autor|autora> de una novela.",
       "{P1} — автор романа.",
       "{P1}是一部小说的作者。"),
      ("The novel by {P1} became a bestseller.",
       "Le roman {P1.of} est devenu un best-seller.",
       "La novela de {P1} se convirtió en un éxito de ventas.",
       "Роман, который <P1:написал|написала> {P1}, стал бестселлером.",
       "{P1}的这部小说成了畅销书。"),
      ("{P1} has never written a book.",
       "{P1} n'a jamais écrit de livre.",
       "{P1} nunca ha escrito un libro.",
       "{P1} никогда не <P1:писал|писала> книг.",
       "{P1}从未写过书。")),
    X(("{O1} has cut {H} jobs at its offices in {C1}.",
       "{O1} a supprimé {H} emplois dans ses bureaux {C1.in}.",
       "{O1} ha suprimido {H} empleos en sus oficinas {C1.of}.",
       "{O1.nom} <O1:сократил|сократила> {H} рабочих мест в своих офисах {C1.in}.",
       "{O1}在{C1}的办事处裁减了{H}个工作岗位。"),
      ("Some employees of {O1} in {C1} have lost their jobs.",
       "Des salariés {O1.of} {C1.in} ont perdu leur emploi.",
       "Algunos empleados de {O1} {C1.in} han perdido su trabajo.",
       "Часть сотрудников {O1.gen} {C1.in} лишилась работы.",
       "{O1}在{C1}的部分员工失去了工作。"),
      ("{O1} plans to close its offices in {C1}.",
       "{O1} prévoit de fermer ses bureaux {C1.in}.",
       "{O1} tiene previsto cerrar sus oficinas {C1.of}.",
       "{O1.nom} планирует закрыть свои офисы {C1.in}.",
       "{O1}计划关闭其在{C1}的办事处。"),
      ("{O1} has created {H} new jobs in {C1}.",
       "{O1} a créé {H} nouveaux emplois {C1.in}.",
       "{O1} ha creado {H} nuevos empleos {C1.in}.",
       "{O1.nom} <O1:создал|создала> {H} новых рабочих мест {C1.in}.",
       "{O1}在{C1}新创造了{H}个工作岗位。")),
    X(("It rained in {C1} all weekend.",
       "Il a plu {C1.in} tout le week-end.",
       "Llovió {C1.in} durante todo el fin de semana.",
       "Все выходные {C1.in} шёл дождь.",
       "{C1}整个周末都在下雨。"),
      ("The weekend in {C1} was wet.",
       "Le week-end a été pluvieux {C1.in}.",
       "El fin de semana fue lluvioso {C1.in}.",
       "Выходные {C1.in} выдались дождливыми.",
       "{C1}周末阴雨连绵。"),
      ("Several football matches in {C1} were postponed.",
       "Plusieurs matchs de football ont été reportés {C1.in}.",
       "Se aplazaron varios partidos de fútbol {C1.in}.",
       "{C1.in} перенесли несколько футбольных матчей.",
       "{C1}的几场足球比赛被推迟了。"),
      ("The weekend in {C1} was sunny and dry.",
       "Le week-end a été sec et ensoleillé {C1.in}.",
       "El fin de semana fue seco y soleado {C1.in}.",
       "Выходные {C1.in} были сухими и солнечными.",
       "{C1}的周末阳光明媚，天气干燥。")),
    X(("{P1} sold <P1:his|her> old car and now cycles to work.",
       "{P1} a vendu sa vieille voiture et va désormais au travail à vélo.",
       "{P1} vendió su coche viejo y ahora va al trabajo en bicicleta.",
       "{P1} <P1:продал|продала> свою старую машину и теперь ездит на работу на велосипеде.",
       "{P1}卖掉了旧车，现在骑自行车上班。"),
      ("{P1} no longer owns the old car.",
       "{P1} ne possède plus sa vieille voiture.",
       "{P1} ya no tiene su coche viejo.",
       "{P1} <P1:избавился|избавилась> от своей старой машины.",
       "{P1}已经不再拥有那辆旧车了。"),
      ("{P1} lives close to the office.",
       "{P1} habite près de son bureau.",
       "{P1} vive cerca de la oficina.",
       "{P1} живёт недалеко от офиса.",
       "{P1}住得离公司很近。"),
      ("{P1} still drives the old car to work every day.",
       "{P1} va toujours au travail tous les jours avec sa vieille voiture.",
       "{P1} sigue yendo al trabajo todos los días en su coche viejo.",
       "{P1} по-прежнему каждый день ездит на работу на своей старой машине.",
       "{P1}仍然每天开着那辆旧车去上班。")),
    X(("{P1} finished first in the race in {C1}.",
       "{P1} a terminé <P1:premier|première> de la course disputée {C1.in}.",
       "{P1} terminó en primer lugar la carrera celebrada {C1.in}.",
       "{P1} <P1:финишировал первым|финишировала первой> в забеге {C1.in}.",
       "{P1}在{C1}的比赛中获得了第一名。"),
      ("{P1} won the race in {C1}.",
       "{P1} a remporté la course disputée {C1.in}.",
       "{P1} ganó la carrera celebrada {C1.in}.",
       "{P1} <P1:выиграл|выиграла> забег {C1.in}.",
       "{P1}赢得了{C1}的比赛。"),
      ("{P1} set a new record in the race.",
       "{P1} a battu un record lors de cette course.",
       "{P1} batió un récord en esa carrera.",
       "{P1} <P1:установил|установила> в этом забеге новый рекорд.",
       "{P1}在这次比赛中创造了新纪录。"),
      ("{P1} finished last in the race in {C1}.",
       "{P1} a terminé <P1:dernier|dernière> de la course disputée {C1.in}.",
       "{P1} terminó en último lugar la carrera celebrada {C1.in}.",
       "{P1} <P1:финишировал последним|финишировала последней> в забеге {C1.in}.",
       "{P1}在{C1}的比赛中获得了最后一名。")),
    X(("The library in {C1} is open every day except Monday.",
       "La bibliothèque {C1.of} est ouverte tous les jours sauf le lundi.",
       "La biblioteca {C1.of} abre todos los días excepto los lunes.",
       "Библиотека {C1.in} работает каждый день, кроме понедельника.",
       "{C1}的图书馆除周一外每天开放。"),
      ("The library in {C1} is closed on Mondays.",
       "La bibliothèque {C1.of} est fermée le lundi.",
       "La biblioteca {C1.of} cierra los lunes.",
       "По понедельникам библиотека {C1.in} закрыта.",
       "{C1}的图书馆周一闭馆。"),
      ("The library in {C1} has a large collection of old maps.",
       "La bibliothèque {C1.of} possède une grande collection de cartes anciennes.",
       "La biblioteca {C1.of} tiene una gran colección de mapas antiguos.",
       "Библиотека {C1.in} хранит большую коллекцию старинных карт.",
       "{C1}的图书馆收藏了大量古地图。"),
      ("The library in {C1} is open seven days a week.",
       "La bibliothèque {C1.of} est ouverte sept jours sur sept.",
       "La biblioteca {C1.of} abre los siete días de la semana.",
       "Библиотека {C1.in} работает без выходных.",
       "{C1}的图书馆一周七天都开放。")),
    X(("{P1} learned to play the piano at the age of {N}.",
       "{P1} a appris à jouer du piano à l'âge de {N} ans.",
       "{P1} aprendió a tocar el piano a los {N} años.",
       "{P1} <P1:научился|научилась> играть на фортепиано в {N:год|года|лет}.",
       "{P1}{N}岁时学会了弹钢琴。"),
      ("{P1} can play the piano.",
       "{P1} sait jouer du piano.",
       "{P1} sabe tocar el piano.",
       "{P1} умеет играть на фортепиано.",
       "{P1}会弹钢琴。"),
      ("{P1} gives piano concerts in {C1}.",
       "{P1} donne des concerts de piano {C1.in}.",
       "{P1} da conciertos de piano {C1.in}.",
       "{P1} даёт фортепианные концерты {C1.in}.",
       "{P1}在{C1}举办钢琴音乐会。"),
      ("{P1} has never learned to play a musical instrument.",
       "{P1} n'a jamais appris à jouer d'un instrument de musique.",
       "{P1} nunca aprendió a tocar ningún instrumento musical.",
       "{P1} так и не <P1:научился|научилась> играть ни на одном музыкальном инструменте.",
       "{P1}从来没有学过任何乐器。"), n=(5, 12)),
    X(("The meeting between {P1} and {P2} lasted {N} hours.",
       "La réunion entre {P1} et {P2} a duré {N} heures.",
       "La reunión entre {P1} y {P2} duró {N} horas.",
       "{P1} и {P2} провели встречу, которая длилась {N:час|часа|часов}.",
       "{P1}和{P2}的会面持续了{N}个小时。"),
      ("{P1} and {P2} had a meeting.",
       "{P1} et {P2} ont eu une réunion.",
       "{P1} y {P2} mantuvieron una reunión.",
       "{P1} и {P2} провели встречу.",
       "{P1}和{P2}进行了会面。"),
      ("{P1} and {P2} reached an agreement at the meeting.",
       "Un accord a été trouvé lors de la réunion entre {P1} et {P2}.",
       "En la reunión, {P1} y {P2} llegaron a un acuerdo.",
       "На встрече {P1} и {P2} достигли соглашения.",
       "{P1}和{P2}在会面中达成了协议。"),
      ("The meeting between {P1} and {P2} lasted only a few minutes.",
       "La réunion entre {P1} et {P2} n'a duré que quelques minutes.",
       "La reunión entre {P1} y {P2} duró solo unos minutos.",
       "Встреча, которую провели {P1} и {P2}, длилась всего несколько минут.",
       "{P1}和{P2}的会面只持续了几分钟。"), n=(2, 6)),
    X(("{P1} was born in {C1} but grew up in {C2}.",
       "{P1} est <P1:né|née> {C1.in} mais a grandi {C2.in}.",
       "{P1} nació {C1.in}, pero creció {C2.in}.",
       "{P1} <P1:родился|родилась> {C1.in}, но <P1:вырос|выросла> {C2.in}.",
       "{P1}出生于{C1}，但在{C2}长大。"),
      ("{P1} spent <P1:his|her> childhood in {C2}.",
       "{P1} a passé son enfance {C2.in}.",
       "{P1} pasó su infancia {C2.in}.",
       "{P1} <P1:провёл|провела> детство {C2.in}.",
       "{P1}的童年是在{C2}度过的。"),
      ("{P1} still visits relatives in {C1}.",
       "{P1} rend encore visite à de la famille {C1.in}.",
       "{P1} todavía visita a sus familiares {C1.in}.",
       "{P1} до сих пор навещает родственников {C1.in}.",
       "{P1}现在仍会去{C1}探望亲戚。"),
      ("{P1} has never left {C1}.",
       "{P1} n'a jamais quitté {C1}.",
       "{P1} nunca ha salido {C1.of}.",
       "{P1} никогда не <P1:покидал|покидала> {C1.acc}.",
       "{P1}从未离开过{C1}。")),
    X(("{O1} opened its first office in {C1} in {Y}.",
       "{O1} a ouvert son premier bureau {C1.in} en {Y}.",
       "{O1} abrió su primera oficina {C1.in} en {Y}.",
       "{O1.nom} <O1:открыл|открыла> свой первый офис {C1.in} в {Y} году.",
       "{O1}于{Y}年在{C1}开设了第一家办事处。"),
      ("In {Y}, {O1} opened an office in {C1}.",
       "En {Y}, {O1} a ouvert un bureau {C1.in}.",
       "En {Y}, {O1} abrió una oficina {C1.in}.",
       "В {Y} году {O1.nom} <O1:открыл|открыла> офис {C1.in}.",
       "{Y}年，{O1}在{C1}开设了一家办事处。"),
      ("The {O1} office in {C1} employs more than {H} people.",
       "Le bureau {O1.of} {C1.in} emploie plus de {H} personnes.",
       "La oficina de {O1} {C1.in} emplea a más de {H} personas.",
       "В офисе {O1.gen} {C1.in} работает более {H} человек.",
       "{O1}在{C1}的办事处有{H}多名员工。"),
      ("{O1} had no office in {C1} until {Y2}.",
       "{O1} n'a eu aucun bureau {C1.in} avant {Y2}.",
       "{O1} no tuvo ninguna oficina {C1.in} hasta {Y2}.",
       "{O1.nom} не <O1:имел|имела> офиса {C1.in} до {Y2} года.",
       "{O1}直到{Y2}年才在{C1}设立办事处。")),
    X(("All the hotels in {C1} were fully booked during the festival.",
       "Pendant le festival, tous les hôtels {C1.of} affichaient complet.",
       "Durante el festival, todos los hoteles {C1.of} estaban completos.",
       "Во время фестиваля все гостиницы {C1.gen} были полностью заняты.",
       "节日期间，{C1}的所有酒店都已客满。"),
      ("There were no free hotel rooms in {C1} during the festival.",
       "Pendant le festival, il n'y avait plus aucune chambre d'hôtel libre {C1.in}.",
       "Durante el festival no quedaban habitaciones de hotel libres {C1.in}.",
       "Во время фестиваля {C1.in} не было свободных гостиничных номеров.",
       "节日期间，{C1}没有空余的酒店房间。"),
      ("The festival in {C1} attracted many visitors from abroad.",
       "Le festival {C1.of} a attiré de nombreux visiteurs étrangers.",
       "El festival {C1.of} atrajo a muchos visitantes extranjeros.",
       "Фестиваль {C1.in} привлёк много иностранных гостей.",
       "{C1}的节日吸引了许多外国游客。"),
      ("Many hotel rooms in {C1} stayed empty during the festival.",
       "Pendant le festival, de nombreuses chambres d'hôtel sont restées vides {C1.in}.",
       "Durante el festival, muchas habitaciones de hotel {C1.of} quedaron vacías.",
       "Во время фестиваля многие гостиничные номера {C1.in} пустовали.",
       "节日期间，{C1}的许多酒店房间都空着。")),
    X(("{P1} is taller than {P2}.",
       "{P1} est plus <P1:grand|grande> {P2.que}.",
       "{P1} es más <P1:alto|alta> que {P2}.",
       "{P1} выше, чем {P2}.",
       "{P1}比{P2}高。"),
      ("{P2} is shorter than {P1}.",
       "{P2} est plus <P2:petit|petite> {P1.que}.",
       "{P2} es más <P2:bajo|baja> que {P1}.",
       "{P2} ниже, чем {P1}.",
       "{P2}比{P1}矮。"),
      ("{P1} is older than {P2}.",
       "{P1} est plus <P1:âgé|âgée> {P2.que}.",
       "{P1} es mayor que {P2}.",
       "{P1} старше, чем {P2}.",
       "{P1}比{P2}年长。"),
      ("{P2} is taller than {P1}.",
       "{P2} est plus <P2:grand|grande> {P1.que}.",
       "{P2} es más <P2:alto|alta> que {P1}.",
       "{P2} выше, чем {P1}.",
       "{P2}比{P1}高。")),
    X(("{P1} teaches mathematics at a secondary school in {C1}.",
       "{P1} enseigne les mathématiques dans un lycée {C1.in}.",
       "{P1} enseña matemáticas en un instituto {C1.of}.",
       "{P1} преподаёт математику в средней школе {C1.in}.",
       "{P1}在{C1}的一所中学教数学。"),
      ("{P1} works as a teacher.",
       "{P1} est <P1:enseignant|enseignante>.",
       "{P1} trabaja como <P1:profesor|profesora>.",
       "{P1} работает <P1:учителем|учительницей>.",
       "{P1}是一名教师。"),
      ("{P1} also gives private lessons in the evenings.",
       "{P1} donne aussi des cours particuliers le soir.",
       "{P1} también da clases particulares por las tardes.",
       "По вечерам {P1} ещё и даёт частные уроки.",
       "{P1}晚上还做家教。"),
      ("{P1} has never worked in a school.",
       "{P1} n'a jamais travaillé dans une école.",
       "{P1} nunca ha trabajado en un centro educativo.",
       "{P1} никогда не <P1:работал|работала> в школе.",
       "{P1}从未在学校工作过。")),
    X(("The bakery on the main square in {C1} sells fresh bread every morning.",
       "La boulangerie de la place principale {C1.of} vend du pain frais tous les matins.",
       "La panadería de la plaza principal {C1.of} vende pan recién hecho todas las mañanas.",
       "Пекарня на главной площади {C1.gen} каждое утро продаёт свежий хлеб.",
       "{C1}中心广场上的面包店每天早上都出售新鲜面包。"),
      ("Bread is sold on the main square in {C1}.",
       "On vend du pain sur la place principale {C1.of}.",
       "En la plaza principal {C1.of} se vende pan.",
       "На главной площади {C1.gen} продают хлеб.",
       "{C1}中心广场上有人卖面包。"),
      ("The bakery has belonged to the same family for generations.",
       "La boulangerie appartient à la même famille depuis des générations.",
       "La panadería pertenece a la misma familia desde hace generaciones.",
       "Пекарня уже несколько поколений принадлежит одной семье.",
       "这家面包店几代人以来一直归同一个家族所有。"),
      ("The bakery on the main square in {C1} closed down years ago.",
       "La boulangerie de la place principale {C1.of} a fermé il y a des années.",
       "La panadería de la plaza principal {C1.of} cerró hace años.",
       "Пекарня на главной площади {C1.gen} закрылась много лет назад.",
       "{C1}中心广场上的面包店多年前就关门了。")),
    X(("{P1} lost <P1:his|her> keys and had to wait outside for two hours.",
       "{P1} a perdu ses clés et a dû attendre dehors pendant deux heures.",
       "{P1} perdió las llaves y tuvo que esperar fuera dos horas.",
       "{P1} <P1:потерял|потеряла> ключи, и <P1:ему|ей> пришлось два часа ждать на улице.",
       "{P1}把钥匙弄丢了，只好在外面等了两个小时。"),
      ("{P1} could not get into the house for a while.",
       "{P1} n'a pas pu entrer chez <P1:lui|elle> pendant un moment.",
       "{P1} no pudo entrar en casa durante un rato.",
       "Какое-то время {P1} не <P1:мог|могла> попасть домой.",
       "{P1}有一段时间进不了家门。"),
      ("{P1} found the keys the next day.",
       "{P1} a retrouvé ses clés le lendemain.",
       "{P1} encontró las llaves al día siguiente.",
       "На следующий день {P1} <P1:нашёл|нашла> ключи.",
       "{P1}第二天找到了钥匙。"),
      ("{P1} unlocked the door with <P1:his|her> keys and went straight in.",
       "{P1} a ouvert la porte avec ses clés et est <P1:entré|entrée> tout de suite.",
       "{P1} abrió la puerta con sus llaves y entró enseguida.",
       "{P1} <P1:открыл|открыла> дверь своими ключами и сразу <P1:вошёл|вошла>.",
       "{P1}用自己的钥匙打开门，直接进去了。")),
    X(("{P1} visited {C1} for the first time in {Y}.",
       "{P1} s'est <P1:rendu|rendue> {C1.to} pour la première fois en {Y}.",
       "{P1} visitó {C1} por primera vez en {Y}.",
       "{P1} впервые <P1:побывал|побывала> {C1.in} в {Y} году.",
       "{P1}于{Y}年第一次来到{C1}。"),
      ("{P1} has been to {C1}.",
       "{P1} est déjà <P1:allé|allée> {C1.to}.",
       "{P1} ha estado {C1.in}.",
       "{P1} <P1:бывал|бывала> {C1.in}.",
       "{P1}去过{C1}。"),
      ("{P1} liked {C1} very much.",
       "{P1} a beaucoup aimé {C1}.",
       "A {P1} le gustó mucho {C1}.",
       "{P1} <P1:остался|осталась> в восторге от {C1.gen}.",
       "{P1}非常喜欢{C1}。"),
      ("{P1} had already visited {C1} many times before {Y}.",
       "Avant {Y}, {P1} s'était déjà <P1:rendu|rendue> {C1.to} à de nombreuses reprises.",
       "Antes de {Y}, {P1} ya había visitado {C1} muchas veces.",
       "До {Y} года {P1} уже много раз <P1:бывал|бывала> {C1.in}.",
       "{Y}年之前，{P1}就已经去过{C1}很多次了。")),
    X(("The new bridge in {C1} opened after {N} years of construction.",
       "Le nouveau pont {C1.of} a été inauguré après {N} ans de travaux.",
       "El nuevo puente {C1.of} se inauguró tras {N} años de obras.",
       "Новый мост {C1.in} открыли после {N:года|лет|лет} строительства.",
       "{C1}的新桥经过{N}年的建设终于通车。"),
      ("Building the new bridge in {C1} took several years.",
       "La construction du nouveau pont {C1.of} a pris plusieurs années.",
       "La construcción del nuevo puente {C1.of} duró varios años.",
       "Строительство нового моста {C1.in} заняло несколько лет.",
       "{C1}新桥的建设用了好几年。"),
      ("The new bridge in {C1} cost more than planned.",
       "Le nouveau pont {C1.of} a coûté plus cher que prévu.",
       "El nuevo puente {C1.of} costó más de lo previsto.",
       "Новый мост {C1.in} обошёлся дороже, чем планировалось.",
       "{C1}新桥的造价超出了预算。"),
      ("The new bridge in {C1} was built in just a few weeks.",
       "Le nouveau pont {C1.of} a été construit en quelques semaines seulement.",
       "El nuevo puente {C1.of} se construyó en solo unas semanas.",
       "Новый мост {C1.in} построили всего за несколько недель.",
       "{C1}的新桥只用了几周就建成了。"), n=(3, 9)),
    X(("{P1} prefers tea but drinks coffee when working late.",
       "{P1} préfère le thé, mais boit du café quand <P1:il|elle> travaille tard.",
       "{P1} prefiere el té, pero toma café cuando trabaja hasta tarde.",
       "{P1} предпочитает чай, но пьёт кофе, когда работает допоздна.",
       "{P1}更喜欢喝茶，但工作到很晚时会喝咖啡。"),
      ("{P1} sometimes drinks coffee.",
       "{P1} boit parfois du café.",
       "{P1} toma café a veces.",
       "{P1} иногда пьёт кофе.",
       "{P1}有时会喝咖啡。"),
      ("{P1} often works late into the night.",
       "{P1} travaille souvent tard dans la nuit.",
       "{P1} suele trabajar hasta altas horas de la noche.",
       "{P1} часто работает до глубокой ночи.",
       "{P1}经常工作到深夜。"),
      ("{P1} never drinks coffee.",
       "{P1} ne boit jamais de café.",
       "{P1} nunca toma café.",
       "{P1} никогда не пьёт кофе.",
       "{P1}从不喝咖啡。")),
    X(("On Tuesday, {O1} and {O2} announced a partnership in {C1}.",
       "Mardi, {O1} et {O2} ont annoncé un partenariat {C1.in}.",
       "El martes, {O1} y {O2} anunciaron una alianza {C1.in}.",
       "Во вторник {O1.bare} и {O2.bare} объявили {C1.in} о партнёрстве.",
       "周二，{O1}和{O2}在{C1}宣布建立合作伙伴关系。"),
      ("{O1} and {O2} are going to work together.",
       "{O1} et {O2} vont travailler ensemble.",
       "{O1} y {O2} van a colaborar.",
       "{O1.bare} и {O2.bare} будут сотрудничать.",
       "{O1}和{O2}将开展合作。"),
      ("The partnership between {O1} and {O2} will last at least five years.",
       "Le partenariat entre {O1} et {O2} durera au moins cinq ans.",
       "La alianza entre {O1} y {O2} durará al menos cinco años.",
       "Партнёрство {O1.gen} и {O2.gen} продлится не менее пяти лет.",
       "{O1}与{O2}的合作将持续至少五年。"),
      ("On Tuesday, {O1} and {O2} ended all cooperation.",
       "Mardi, {O1} et {O2} ont mis fin à toute coopération.",
       "El martes, {O1} y {O2} pusieron fin a toda cooperación.",
       "Во вторник {O1.bare} и {O2.bare} прекратили всякое сотрудничество.",
       "周二，{O1}和{O2}终止了一切合作。")),
    X(("The children in {C1} went back to school after a two-week holiday.",
       "Les enfants {C1.of} ont repris l'école après deux semaines de vacances.",
       "Los niños {C1.of} volvieron al colegio tras dos semanas de vacaciones.",
       "После двухнедельных каникул дети {C1.in} вернулись в школу.",
       "两周的假期结束后，{C1}的孩子们回到了学校。"),
      ("The school holidays in {C1} are over.",
       "Les vacances scolaires sont terminées {C1.in}.",
       "Las vacaciones escolares han terminado {C1.in}.",
       "Школьные каникулы {C1.in} закончились.",
       "{C1}的学校假期已经结束。"),
      ("Many families from {C1} went skiing during the holiday.",
       "Pendant les vacances, de nombreuses familles {C1.of} sont parties au ski.",
       "Durante las vacaciones, muchas familias {C1.of} fueron a esquiar.",
       "Во время каникул многие семьи {C1.from} ездили кататься на лыжах.",
       "假期里，{C1}的许多家庭去滑雪了。"),
      ("The school holidays in {C1} have only just begun.",
       "Les vacances scolaires viennent tout juste de commencer {C1.in}.",
       "Las vacaciones escolares acaban de empezar {C1.in}.",
       "Школьные каникулы {C1.in} только начались.",
       "{C1}的学校假期才刚刚开始。")),
    X(("{P1} moved to {C1} to study architecture.",
       "{P1} s'est <P1:installé|installée> {C1.in} pour étudier l'architecture.",
       "{P1} se mudó {C1.to} para estudiar arquitectura.",
       "{P1} <P1:переехал|переехала> {C1.to}, чтобы изучать архитектуру.",
       "{P1}搬到{C1}去学习建筑。"),
      ("{P1} went to {C1} for <P1:his|her> studies.",
       "{P1} est <P1:parti|partie> {C1.to} pour ses études.",
       "{P1} se fue {C1.to} para estudiar.",
       "{P1} <P1:уехал|уехала> {C1.to} учиться.",
       "{P1}为了求学去了{C1}。"),
      ("{P1} shares a flat with two other students.",
       "{P1} partage un appartement avec deux autres étudiants.",
       "{P1} comparte piso con otros dos estudiantes.",
       "{P1} снимает квартиру вместе с двумя другими студентами.",
       "{P1}和另外两名学生合租一套公寓。"),
      ("{P1} has never lived in {C1}.",
       "{P1} n'a jamais vécu {C1.in}.",
       "{P1} nunca ha vivido {C1.in}.",
       "{P1} никогда не <P1:жил|жила> {C1.in}.",
       "{P1}从未在{C1}生活过。")),
    X(("A shop in {C1} sold all its umbrellas within an hour.",
       "En moins d'une heure, un magasin {C1.of} a écoulé tout son stock de parapluies.",
       "Una tienda {C1.of} vendió todos sus paraguas en menos de una hora.",
       "Магазин {C1.in} распродал все зонты меньше чем за час.",
       "{C1}的一家商店不到一个小时就卖光了所有雨伞。"),
      ("The umbrellas sold very quickly.",
       "Les parapluies se sont vendus très vite.",
       "Los paraguas se vendieron muy rápido.",
       "Зонты раскупили очень быстро.",
       "雨伞卖得非常快。"),
      ("It started raining heavily in {C1} that morning.",
       "Ce matin-là, il s'est mis à pleuvoir très fort {C1.in}.",
       "Esa mañana empezó a llover con fuerza {C1.in}.",
       "В то утро {C1.in} начался сильный дождь.",
       "那天早上{C1}开始下大雨。"),
      ("Nobody bought an umbrella at the shop in {C1}.",
       "Personne n'a acheté de parapluie dans ce magasin {C1.of}.",
       "Nadie compró un paraguas en esa tienda {C1.of}.",
       "В этом магазине {C1.in} никто не купил ни одного зонта.",
       "{C1}的那家商店一把雨伞也没卖出去。")),
    X(("{P1} arrived in {C1} on Monday and left on Thursday.",
       "{P1} est <P1:arrivé|arrivée> {C1.to} lundi et en est <P1:reparti|repartie> jeudi.",
       "{P1} llegó {C1.to} el lunes y se marchó el jueves.",
       "{P1} <P1:приехал|приехала> {C1.to} в понедельник и <P1:уехал|уехала> в четверг.",
       "{P1}周一到达{C1}，周四离开。"),
      ("{P1} spent several days in {C1}.",
       "{P1} a passé plusieurs jours {C1.in}.",
       "{P1} pasó varios días {C1.in}.",
       "{P1} <P1:провёл|провела> {C1.in} несколько дней.",
       "{P1}在{C1}待了好几天。"),
      ("{P1} was in {C1} on business.",
       "{P1} était en voyage d'affaires {C1.in}.",
       "{P1} estaba {C1.in} por trabajo.",
       "{P1} <P1:был|была> {C1.in} в командировке.",
       "{P1}是去{C1}出差的。"),
      ("{P1} spent only one night in {C1}.",
       "{P1} n'a passé qu'une seule nuit {C1.in}.",
       "{P1} pasó solo una noche {C1.in}.",
       "{P1} <P1:провёл|провела> {C1.in} всего одну ночь.",
       "{P1}只在{C1}住了一晚。")),
    X(("The film directed by {P1} won three awards at the festival in {C1}.",
       "Le film réalisé par {P1} a remporté trois prix au festival {C1.of}.",
       "La película dirigida por {P1} ganó tres premios en el festival {C1.of}.",
       "Фильм, который <P1:снял|сняла> {P1}, получил три награды на фестивале {C1.in}.",
       "{P1}执导的电影在{C1}的电影节上获得了三个奖项。"),
      ("The film directed by {P1} received awards.",
       "Le film réalisé par {P1} a été récompensé.",
       "La película dirigida por {P1} recibió premios.",
       "Фильм, который <P1:снял|сняла> {P1}, был отмечен наградами.",
       "{P1}执导的电影获了奖。"),
      ("The film directed by {P1} will soon be shown in cinemas in {L1}.",
       "Le film réalisé par {P1} sortira bientôt en salles {L1.in}.",
       "La película dirigida por {P1} se estrenará pronto en los cines {L1.of}.",
       "Фильм, который <P1:снял|сняла> {P1}, скоро выйдет в прокат {L1.in}.",
       "{P1}执导的电影即将在{L1}的影院上映。"),
      ("The film directed by {P1} did not win anything at the festival in {C1}.",
       "Le film réalisé par {P1} n'a rien remporté au festival {C1.of}.",
       "La película dirigida por {P1} no ganó nada en el festival {C1.of}.",
       "Фильм, который <P1:снял|сняла> {P1}, ничего не получил на фестивале {C1.in}.",
       "{P1}执导的电影在{C1}的电影节上一无所获。")),
    X(("Last night the temperature in {C1} fell to {N} degrees below zero.",
       "La nuit dernière, la température est descendue à moins {N} degrés {C1.in}.",
       "Anoche la temperatura {C1.in} bajó a {N} grados bajo cero.",
       "Прошлой ночью температура {C1.in} опустилась до минус {N:градуса|градусов|градусов}.",
       "昨晚{C1}的气温降到了零下{N}度。"),
      ("It was freezing in {C1} last night.",
       "Il a gelé {C1.in} la nuit dernière.",
       "Anoche heló {C1.in}.",
       "Прошлой ночью {C1.in} был мороз.",
       "昨晚{C1}天寒地冻。"),
      ("Several roads in {C1} were closed because of ice.",
       "Plusieurs routes ont été fermées {C1.in} à cause du verglas.",
       "Varias carreteras {C1.of} se cerraron por el hielo.",
       "Из-за гололёда {C1.in} закрыли несколько дорог.",
       "由于结冰，{C1}的几条道路被封闭。"),
      ("It was a warm night in {C1}.",
       "La nuit a été douce {C1.in}.",
       "Anoche hizo calor {C1.in}.",
       "Ночь {C1.in} выдалась тёплой.",
       "昨晚{C1}很暖和。"), n=(5, 20), cold=True),
    X(("{P1} answered all {N} questions in the exam correctly.",
       "{P1} a répondu correctement aux {N} questions de l'examen.",
       "{P1} respondió correctamente a las {N} preguntas del examen.",
       "{P1} правильно <P1:ответил|ответила> на все {N:вопрос|вопроса|вопросов} экзамена.",
       "{P1}答对了考试中全部{N}道题。"),
      ("{P1} made no mistakes in the exam.",
       "{P1} n'a fait aucune erreur à l'examen.",
       "{P1} no cometió ningún error en el examen.",
       "{P1} не <P1:сделал|сделала> на экзамене ни одной ошибки.",
       "{P1}在考试中没有出任何错。"),
      ("{P1} finished the exam before everyone else.",
       "{P1} a terminé l'examen avant tout le monde.",
       "{P1} terminó el examen antes que nadie.",
       "{P1} <P1:закончил|закончила> экзамен раньше всех.",
       "{P1}比其他人都先完成了考试。"),
      ("{P1} got several of the exam questions wrong.",
       "{P1} s'est <P1:trompé|trompée> sur plusieurs questions de l'examen.",
       "{P1} falló varias preguntas del examen.",
       "{P1} неправильно <P1:ответил|ответила> на несколько вопросов экзамена.",
       "{P1}在考试中答错了好几道题。"), n=(10, 40)),
    X(("A factory near {C1} produces about {H} bicycles a day.",
       "Une usine située près {C1.of} produit environ {H} vélos par jour.",
       "Una fábrica situada cerca {C1.of} produce unas {H} bicicletas al día.",
       "Завод недалеко от {C1.gen} выпускает около {H} велосипедов в день.",
       "{C1}附近的一家工厂每天生产约{H}辆自行车。"),
      ("Bicycles are made near {C1}.",
       "On fabrique des vélos près {C1.of}.",
       "Cerca {C1.of} se fabrican bicicletas.",
       "Недалеко от {C1.gen} производят велосипеды.",
       "{C1}附近生产自行车。"),
      ("Most of the bicycles are exported to {L1}.",
       "La plupart de ces vélos sont exportés {L1.to}.",
       "La mayoría de las bicicletas se exportan {L1.to}.",
       "Большую часть велосипедов экспортируют {L1.to}.",
       "这些自行车大部分出口到{L1}。"),
      ("The factory near {C1} stopped making bicycles years ago.",
       "L'usine située près {C1.of} a cessé de fabriquer des vélos il y a des années.",
       "La fábrica situada cerca {C1.of} dejó de fabricar bicicletas hace años.",
       "Завод недалеко от {C1.gen} прекратил выпуск велосипедов много лет назад.",
       "{C1}附近的那家工厂多年前就停止生产自行车了。")),
    X(("{P1} has lived in the same house in {C1} for {N} years.",
       "{P1} habite dans la même maison {C1.in} depuis {N} ans.",
       "{P1} lleva {N} años viviendo en la misma casa {C1.in}.",
       "{P1} уже {N:год|года|лет} живёт в одном и том же доме {C1.in}.",
       "{P1}在{C1}的同一所房子里住了{N}年。"),
      ("{P1} has not moved house for a long time.",
       "{P1} n'a pas déménagé depuis longtemps.",
       "{P1} lleva mucho tiempo sin mudarse.",
       "{P1} давно не <P1:переезжал|переезжала>.",
       "{P1}很久没有搬家了。"),
      ("{P1} owns the house.",
       "{P1} est <P1:propriétaire|propriétaire> de la maison.",
       "{P1} es <P1:el propietario|la propietaria> de la casa.",
       "{P1} — <P1:владелец|владелица> этого дома.",
       "这所房子归{P1}所有。"),
      ("{P1} moved into the house last month.",
       "{P1} a emménagé dans cette maison le mois dernier.",
       "{P1} se mudó a esa casa el mes pasado.",
       "{P1} <P1:переехал|переехала> в этот дом в прошлом месяце.",
       "{P1}上个月才搬进这所房子。"), n=(12, 40)),
    X(("On Saturday evening, {P1} cooked dinner for {N} guests.",
       "Samedi soir, {P1} a préparé le dîner pour {N} invités.",
       "El sábado por la noche, {P1} preparó la cena para {N} invitados.",
       "В субботу вечером {P1} <P1:приготовил|приготовила> ужин для {N:гостя|гостей|гостей}.",
       "周六晚上，{P1}为{N}位客人做了晚饭。"),
      ("{P1} had guests on Saturday evening.",
       "{P1} a reçu des invités samedi soir.",
       "{P1} tuvo invitados el sábado por la noche.",
       "В субботу вечером {P1} <P1:принимал|принимала> гостей.",
       "{P1}周六晚上家里来了客人。"),
      ("{P1} made fish soup for the guests.",
       "{P1} a servi une soupe de poisson à ses invités.",
       "{P1} preparó una sopa de pescado para los invitados.",
       "{P1} <P1:приготовил|приготовила> для гостей рыбный суп.",
       "{P1}给客人做了鱼汤。"),
      ("{P1} spent Saturday evening alone.",
       "{P1} a passé la soirée de samedi <P1:seul|seule>.",
       "{P1} pasó la noche del sábado <P1:solo|sola>.",
       "{P1} <P1:провёл|провела> субботний вечер в одиночестве.",
       "{P1}周六晚上一个人度过。"), n=(3, 12)),
]

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


def generate(templates_schedule, rng, render_fn, key_fn):
    """Fill each scheduled template, retrying until the item is new in every language."""
    seen = {lang: set() for lang in LANGS}
    items = []
    for t in templates_schedule:
        for _ in range(200):
            fill = make_fill(t, rng)
            item = render_fn(t, fill)
            keys = {lang: key_fn(item, lang) for lang in LANGS}
            if all(keys[lang] not in seen[lang] for lang in LANGS):
                for lang in LANGS:
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
    print(f"wrote NER ({len(ner_items)} sentences/lang), XNLI ({len(xnli_items)} premises, "
          f"{3 * len(xnli_items)} pairs/lang), parallel to {out}")


if __name__ == "__main__":
    main()

"""Which strings are language codes: the ISO 639-1 codes, common ISO 639-3 codes, and regional or script variants
of them (pt-BR, zh_Hant). utils.tasks.registry.is_known_language adds the languages of the tasks' hub datasets
(WikiANN's ace, bat-smg, ...). Used where a word must be told apart from a language name: a TSV's first line is a
header only when both its fields are known codes, never merely because they are short ('one<TAB>un')."""
from __future__ import annotations

import re

ISO_639_1 = frozenset("""
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en
    eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv
    ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne
    ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st
    su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu""".split())

# ISO 639-3 codes of widely used languages (as in flores-style names, eng_Latn), beside their ISO 639-1 codes.
COMMON_ISO_639_3 = frozenset("""
    amh ara ben bul cat ces cmn dan deu ell eng est eus fas fin fra glg guj heb hin hrv hun hye ind isl ita jpn kan
    kat kaz kor lav lit mal mar msa nld nob nor pan pol por ron rus slk slv spa srp swa swe tam tel tha tur ukr urd
    vie yue zho""".split())

_CODE = re.compile(r"^([a-z]{2,3})(?:[-_][a-z0-9]{2,8})*$")


def base_code(code: str) -> str | None:
    """'pt' for 'pt-BR' or 'PT_br', 'eng' for 'eng_Latn'; None when `code` is not shaped like a language code."""
    match = _CODE.match(code.strip().lower())
    return match.group(1) if match else None


def is_iso_language(code: str) -> bool:
    """An ISO 639-1 code or a common ISO 639-3 code, alone or with region/script subtags."""
    base = base_code(code)
    return base is not None and (base in ISO_639_1 or base in COMMON_ISO_639_3)

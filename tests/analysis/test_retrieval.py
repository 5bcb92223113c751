"""sentence_retrieval: margin kNN, the task-model -> base-model mask mapping, TSV input, and the command."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from utils.infra.errors import UserError
from utils.core.masks import Mask
from utils.core.pruning import prunable_weights, random_prune
from utils.analysis.retrieval import align_mask, margin_retrieval, read_header, read_tsv

SENTENCES = [
    ("Marie Curie was born in Warsaw and worked in Paris.",
     "Marie Curie est née à Varsovie et a travaillé à Paris."),
    ("The European Union signed a new agreement with Canada on Monday.",
     "L'Union européenne a signé un nouvel accord avec le Canada lundi."),
    ("The children are playing football in the park.", "Les enfants jouent au football dans le parc."),
    ("A woman is reading a book while drinking coffee.", "Une femme lit un livre en buvant un café."),
    ("The weather in London is cold and rainy in November.", "Il fait froid et humide à Londres en novembre."),
    ("John Smith works for Google in New York.", "John Smith travaille pour Google à New York."),
    ("Los niños están jugando al fútbol en el parque.", "Дети играют в футбол в парке."),
    ("欧盟星期一与加拿大签署了一项新协议。", "孩子们在公园里踢足球。"),
]


def test_margin_retrieval_finds_aligned_rows_and_not_shuffled_ones():
    rng = np.random.default_rng(0)
    src = rng.standard_normal((50, 16)).astype(np.float32)
    src /= np.linalg.norm(src, axis=1, keepdims=True)
    tgt = src + 0.05 * rng.standard_normal(src.shape).astype(np.float32)
    tgt /= np.linalg.norm(tgt, axis=1, keepdims=True)
    assert margin_retrieval(src, tgt, k=5) == (1.0, 1.0)
    assert margin_retrieval(src, tgt[::-1].copy(), k=5)[0] <= 0.04
    assert margin_retrieval(src[:3], tgt[:3], k=5) == (1.0, 1.0)  # k larger than the data is clipped


def test_task_model_mask_maps_onto_the_base_model():
    from transformers import BertForSequenceClassification, BertForTokenClassification, BertModel

    from tests.conftest import tiny_bert_config

    base = BertModel(tiny_bert_config())
    ner = random_prune(prunable_weights(BertForTokenClassification(tiny_bert_config())), 0.5, seed=1)
    fitted = align_mask(ner, base)
    assert list(fitted) == list(prunable_weights(base))
    assert "encoder.layer.0.attention.self.query.weight" in fitted
    assert any("no pooler entry" in note for note in fitted.notes)
    fitted.apply_to_weights(prunable_weights(base))
    query = base.encoder.layer[1].attention.self.query.weight
    expected = ner["bert.encoder.layer.1.attention.self.query.weight"]
    assert torch.equal(query != 0, expected)
    xnli = random_prune(prunable_weights(BertForSequenceClassification(tiny_bert_config())), 0.5, seed=2)
    with_pooler = align_mask(xnli, base)
    assert torch.equal(with_pooler["pooler.dense.weight"], xnli["bert.pooler.dense.weight"])
    assert not with_pooler.notes


def test_mt5_mask_maps_onto_mt5model(tiny_t5):
    from transformers import MT5Model

    mask = random_prune(prunable_weights(tiny_t5), 0.5, seed=1)
    base = MT5Model(tiny_t5.config)
    fitted = align_mask(mask, base)
    assert list(fitted) == list(mask) and not fitted.notes


def test_tsv_reading(tmp_path):
    path = tmp_path / "en-fr.tsv"
    path.write_text("".join(f"{a}\t{b}\n" for a, b in SENTENCES[:3]), encoding="utf-8")
    data = read_tsv(path)
    assert (data.src_lang, data.tgt_lang, data.src[0]) == ("en", "fr", SENTENCES[0][0])
    swapped = read_tsv(path, src_lang="fr", max_sentences=2)
    assert (swapped.src_lang, swapped.tgt_lang, swapped.src, len(swapped.tgt)) == (
        "fr", "en", [SENTENCES[0][1], SENTENCES[1][1]], 2)
    with pytest.raises(UserError, match="holds en-fr pairs, not en-de"):
        read_tsv(path, tgt_lang="de")
    headed = tmp_path / "pairs.tsv"
    headed.write_text("fr\ten\n" + f"{SENTENCES[0][1]}\t{SENTENCES[0][0]}\n" + "only one field\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 3: expected 'source<TAB>target'"):
        read_tsv(headed)
    with pytest.raises(UserError, match="parallel file not found"):
        read_tsv(tmp_path / "missing.tsv")


def _write(path, text: str):
    path.write_bytes(text.encode("utf-8"))
    return path


def test_a_header_is_read_only_when_it_names_two_known_languages(tmp_path):
    """'one<TAB>un' is a sentence pair, not a header; 'en<TAB>fr' after a byte-order mark is a header."""
    pairs = "".join(f"{a}\t{b}\n" for a, b in SENTENCES[:3])
    words = _write(tmp_path / "words.tsv", "one\tun\ntwo\tdeux\nthree\ttrois\n")
    data = read_tsv(words, src_lang="en", tgt_lang="fr")
    assert (data.src, data.tgt, data.header) == (["one", "two", "three"], ["un", "deux", "trois"], None)
    assert data.describe() == "no header line; languages en-fr from --src_lang/--tgt_lang"
    bom = _write(tmp_path / "bom.tsv", "\ufeffen\tfr\n" + pairs)
    data = read_tsv(bom)
    assert (data.src_lang, data.tgt_lang, data.src, data.tgt) == (
        "en", "fr", [a for a, _ in SENTENCES[:3]], [b for _, b in SENTENCES[:3]])
    assert data.describe() == "header line 'en<TAB>fr' read; languages en-fr from its header line"
    swapped = read_tsv(_write(tmp_path / "de-en.tsv", "\ufeffFR\ten\n" + pairs), src_lang="en")
    assert (swapped.src_lang, swapped.tgt_lang, swapped.src[0]) == ("en", "fr", SENTENCES[0][1])  # header wins
    # a byte-order mark inside (two files concatenated) is dropped too, never part of a sentence
    joined = read_tsv(_write(tmp_path / "en-fr.tsv", pairs + "\ufeff" + pairs))
    assert joined.src == [a for a, _ in SENTENCES[:3]] * 2 and joined.header is None
    assert joined.describe() == "no header line; languages en-fr from the file name"
    # --header: yes takes the first line whatever it says, no never
    headed = read_tsv(words, header="yes")
    assert headed.src == ["two", "three"]
    assert headed.describe() == "header line 'one<TAB>un' read; languages one-un from its header line"
    as_data = read_tsv(bom, src_lang="en", tgt_lang="fr", header="no")
    assert (as_data.src[0], as_data.tgt[0], len(as_data.src)) == ("en", "fr", 4)
    # a file named after two words is not named after languages
    assert read_tsv(_write(tmp_path / "new-old.tsv", pairs)).describe() == (
        "no header line; languages src-tgt from defaults (name them with --src_lang/--tgt_lang)")


@pytest.mark.parametrize("cells, mode, expected", [
    (["en", "fr"], "auto", (True, ["en", "fr"])),
    (["pt-BR", "zh_Hant"], "auto", (True, ["pt-br", "zh_hant"])),
    (["eng_Latn", "fra_Latn"], "auto", (True, ["eng_latn", "fra_latn"])),
    (["bat-smg", "ace"], "auto", (True, ["bat-smg", "ace"])),  # WikiANN's languages (the NER hub)
    (["Source", "target "], "auto", (True, None)),
    (["one", "un"], "auto", (False, None)),
    (["no", "no"], "auto", (False, None)),  # the same code twice: a pair of one-word sentences
    (["is", "it"], "no", (False, None)),
    (["en", "fr", "de"], "auto", (False, None)),
    (["English", "French"], "yes", (True, ["english", "french"])),
])
def test_read_header(cells, mode, expected):
    assert read_header(cells, mode) == expected


def test_header_yes_needs_two_fields_and_header_needs_a_tsv(tmp_path):
    from utils.analysis.retrieval import ParallelEmbeddingArguments, load_pairs

    with pytest.raises(UserError, match="^--header yes: line 1 must name the two columns, got 3 field"):
        read_tsv(_write(tmp_path / "x.tsv", "a\tb\tc\nd\te\n"), header="yes")
    args = ParallelEmbeddingArguments(output_dir=str(tmp_path), dataset_name="wmt14", dataset_config="fr-en",
                                      header="no")
    with pytest.raises(UserError, match="^--header applies to --tsv files only$"):
        load_pairs(args)


def test_identity_retrieval_is_perfect_at_every_layer(tmp_path, tiny_models, run_script, capsys):
    path = tmp_path / "same.tsv"
    sentences = [s for pair in SENTENCES for s in pair]
    path.write_text("".join(f"{s}\t{s}\n" for s in sentences), encoding="utf-8")
    for model in ("mbert-tiny", "mt5-tiny"):
        result = run_script("sentence_retrieval.py", "--model_name_or_path", str(tiny_models / model), "--tsv",
                            str(path), "--src_lang", "en", "--tgt_lang", "en", "--output_dir", str(tmp_path / model),
                            "--batch_size", "5", "--no_plots")
        assert len(result["layers"]) == 3  # embeddings + 2 layers
        assert all(r["accuracy"] == 1.0 and r["accuracy_reverse"] == 1.0 for r in result["layers"])
    assert "best layer" in capsys.readouterr().out


def test_retrieval_script_with_masks_end_to_end(tmp_path, tiny_models, run_script, capsys):
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    tsv = tmp_path / "en-fr.tsv"
    tsv.write_text("en\tfr\n" + "".join(f"{a}\t{b}\n" for a, b in SENTENCES), encoding="utf-8")
    from utils.infra.args import ModelArguments
    from utils.infra.models import load_model

    model_args = ModelArguments(model_name_or_path=str(tiny_models / "mbert-tiny"))
    ner = load_model(AutoModelForTokenClassification, model_args, num_labels=7)
    xnli = load_model(AutoModelForSequenceClassification, model_args, num_labels=3)
    random_prune(prunable_weights(ner), 0.5, 1).save(tmp_path / "ner.pt", {"task": "ner", "languages": ["en"]})
    random_prune(prunable_weights(xnli), 0.5, 2).save(tmp_path / "xnli.pt", {"task": "xnli", "languages": ["fr"]},
                                                      packed=True)
    out = tmp_path / "out"
    result = run_script("sentence_retrieval.py", "--model_name_or_path", str(tiny_models / "mbert-tiny"),
                        "--tsv", str(tsv), "--src_mask", str(tmp_path / "ner.pt"), "--tgt_mask",
                        str(tmp_path / "xnli.pt"), "--pooling", "cls", "--output_dir", str(out))
    assert (result["src_lang"], result["tgt_lang"], result["pairs"]) == ("en", "fr", len(SENTENCES))
    assert result["src_mask"]["metadata"]["task"] == "ner" and result["tgt_mask"]["metadata"]["task"] == "xnli"
    assert result["src_mask"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert result["src_mask"]["applied_sparsity"] < 0.5  # the base model's pooler stays dense
    saved = json.loads((out / "retrieval_en-fr.json").read_text())
    assert [r["layer"] for r in saved["layers"]] == [0, 1, 2]
    assert (out / "retrieval_en-fr.png").is_file()
    printed = capsys.readouterr().out
    assert "no pooler entry" in printed and "en->fr" in printed
    assert (f"retrieval en->fr: {len(SENTENCES)} pairs from {tsv} (header line 'en<TAB>fr' read; languages en-fr "
            "from its header line), cls pooling, k=5") in printed.splitlines()
    with pytest.raises(SystemExit):
        run_script("sentence_retrieval.py", "--model_name_or_path", str(tiny_models / "mbert-tiny"),
                   "--output_dir", str(out))
    assert "no sentence pairs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_script("sentence_retrieval.py", "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--tsv",
                   str(tsv), "--src_mask", str(tmp_path / "nope.pt"), "--output_dir", str(out))
    assert "mask file not found" in capsys.readouterr().err


def test_mask_that_does_not_fit_is_one_line(tmp_path, tiny_models, run_script, capsys, tiny_t5):
    mask = random_prune(prunable_weights(tiny_t5), 0.5, seed=1)
    mask.save(tmp_path / "t5.pt")
    tsv = tmp_path / "en-fr.tsv"
    tsv.write_text("".join(f"{a}\t{b}\n" for a, b in SENTENCES[:3]), encoding="utf-8")
    with pytest.raises(SystemExit):
        run_script("sentence_retrieval.py", "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--tsv",
                   str(tsv), "--src_mask", str(tmp_path / "t5.pt"), "--output_dir", str(tmp_path / "out"))
    assert "does not fit this model" in capsys.readouterr().err
    assert isinstance(Mask.load(tmp_path / "t5.pt"), Mask)


def test_retrieval_killed_before_its_figure_is_not_complete(tmp_path, tiny_models, run_script, monkeypatch):
    """retrieval_<pair>.json (what a study checks) is written after the figure."""
    from utils.analysis import plots

    tsv = tmp_path / "en-fr.tsv"
    tsv.write_text("".join(f"{a}\t{b}\n" for a, b in SENTENCES), encoding="utf-8")
    args = ("--model_name_or_path", str(tiny_models / "mbert-tiny"), "--tsv", str(tsv), "--src_lang", "en",
            "--tgt_lang", "fr", "--output_dir", str(tmp_path / "out"))

    def killed(*args, **kwargs):
        raise RuntimeError("killed while plotting")

    with monkeypatch.context() as patch:
        patch.setattr(plots, "curves", killed)
        with pytest.raises(RuntimeError, match="killed while plotting"):
            run_script("sentence_retrieval.py", *args)
    assert not (tmp_path / "out" / "retrieval_en-fr.json").exists()
    run_script("sentence_retrieval.py", *args)
    out = tmp_path / "out"
    assert (out / "retrieval_en-fr.json").is_file() and (out / "retrieval_en-fr.png").is_file()

"""representation_similarity.py end to end on the tiny mBERT: known answers, files read back, one-line errors."""
from __future__ import annotations

import csv
import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from utils.core.masks import Mask
from utils.core.pruning import prunable_weights, random_prune

REPO = Path(__file__).resolve().parents[2]


def _tsv(tmp_path: Path, count: int, same: bool = False) -> Path:
    """The first `count` bundled en-fr pairs (or the English side twice)."""
    lines = (REPO / "data/parallel/en-fr.tsv").read_text(encoding="utf-8").splitlines()[:count]
    if same:
        lines = [f"{line.split(chr(9))[0]}\t{line.split(chr(9))[0]}" for line in lines]
    path = tmp_path / ("en-en.tsv" if same else "en-fr.tsv")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ner_masks(tmp_path: Path, tiny_models: Path) -> dict[str, Path]:
    from transformers import AutoModelForTokenClassification

    from utils.infra.args import ModelArguments
    from utils.infra.models import load_model

    model_name = str(tiny_models / "mbert-tiny")
    weights = prunable_weights(load_model(AutoModelForTokenClassification, ModelArguments(model_name), num_labels=7))
    paths = {}
    for name, mask in (("full", Mask(OrderedDict((n, torch.ones(w.shape, dtype=torch.bool))
                                                 for n, w in weights.items()))),
                       ("half", random_prune(weights, 0.5, seed=1))):
        paths[name] = tmp_path / f"{name}.pt"
        mask.save(paths[name], {"task": "ner", "languages": ["en"], "model": model_name})
    return paths


def test_same_sentences_same_mask_score_one_at_every_layer(tmp_path, tiny_models, run_script, capsys):
    tsv = _tsv(tmp_path, 150, same=True)
    masks = _ner_masks(tmp_path, tiny_models)
    out = tmp_path / "out"
    result = run_script("representation_similarity.py", "--model_name_or_path", str(tiny_models / "mbert-tiny"),
                        "--tsv", str(tsv), "--src_lang", "en", "--tgt_lang", "en", "--pooling", "mean",
                        "--src_mask", str(masks["half"]), "--tgt_mask", str(masks["half"]), "--output_dir", str(out))
    layers = result["comparisons"][0]["layers"]
    assert [row["layer"] for row in layers] == [0, 1, 2]
    for row in layers:
        for measure in ("svcca", "pwcca", "cka"):
            assert row[measure] == pytest.approx(1.0, abs=1e-6)
        # unrelated rows: mean rho^2 about d/(n-1) = 54/149 here (utils/analysis/cca.py), SVCCA 0.54, CKA 0.18
        assert row["svcca_shuffled"] < 0.7 and row["pwcca_shuffled"] < 0.7 and row["cka_shuffled"] < 0.3
    assert result["comparisons"][0]["label"] == "en (ner/en/50%) vs en (ner/en/50%)"
    saved = json.loads((out / "representations_en-en.json").read_text())
    assert saved["comparisons"][0]["layers"] == layers
    rows = list(csv.DictReader((out / "representations_en-en.csv").open()))
    assert [int(r["layer"]) for r in rows] == [0, 1, 2] and float(rows[2]["cka"]) == pytest.approx(1.0, abs=1e-5)
    assert (out / "representations_en-en.png").stat().st_size > 10_000
    assert "[" in capsys.readouterr().out


def test_dense_vs_ticket(tmp_path, tiny_models, run_script):
    tsv = _tsv(tmp_path, 150)
    masks = _ner_masks(tmp_path, tiny_models)
    common = ("--model_name_or_path", str(tiny_models / "mbert-tiny"), "--tsv", str(tsv), "--compare",
              "dense_vs_ticket", "--output_dir", str(tmp_path / "out"), "--no_plots")
    keep_all = run_script("representation_similarity.py", *common, "--src_mask", str(masks["full"]))
    assert [c["label"] for c in keep_all["comparisons"]] == ["en: dense vs ner/en/0%"]  # only the masked side
    rows = keep_all["comparisons"][0]["layers"]
    assert rows[0]["svcca"] is None and "CLS" in rows[0]["note"]  # [CLS] at the embeddings: one vector for all
    assert all(row[m] == pytest.approx(1.0, abs=1e-6) for row in rows[1:] for m in ("svcca", "pwcca", "cka"))
    half = run_script("representation_similarity.py", *common, "--pooling", "mean", "--src_mask",
                      str(masks["half"]), "--tgt_mask", str(masks["half"]), "--name", "half")
    assert [c["label"] for c in half["comparisons"]] == ["en: dense vs ner/en/50%", "fr: dense vs ner/en/50%"]
    for comparison in half["comparisons"]:
        first, *deeper = comparison["layers"]
        assert first["cka"] == pytest.approx(1.0, abs=1e-6)  # the embeddings are never pruned
        assert all(row["cka"] < 0.9999 for row in deeper)  # pruning half the weights changes the layers
    assert (tmp_path / "out" / "representations_half.json").is_file()


def test_bad_inputs_stop_with_one_line(tmp_path, tiny_models, run_script, capsys):
    tsv = _tsv(tmp_path, 100)
    masks = _ner_masks(tmp_path, tiny_models)
    common = ("--model_name_or_path", str(tiny_models / "mbert-tiny"), "--output_dir", str(tmp_path / "out"),
              "--no_plots")
    with pytest.raises(SystemExit):
        run_script("representation_similarity.py", *common, "--tsv", str(tsv))
    err = capsys.readouterr().err
    assert "too few sentence pairs for CCA: 100, but 64 + 64 directions" in err
    assert err.strip().endswith("; give more than 128 pairs, or pass --cca_dims 49 (or fewer) to keep fewer "
                                "directions a side")
    result = run_script("representation_similarity.py", *common, "--tsv", str(tsv), "--cca_dims", "49",
                        "--pooling", "mean")  # the advice can be followed: 100 pairs > 2 x 49
    assert result["comparisons"][0]["layers"][1]["svcca_dims"] == [49, 49]
    with pytest.raises(SystemExit):  # no --cca_dims helps 2 pairs: say how many pairs CCA needs
        run_script("representation_similarity.py", *common, "--tsv", str(tsv), "--max_sentences", "2")
    assert capsys.readouterr().err.strip().endswith(
        "; SVCCA and PWCCA need at least 3 sentence pairs (with --cca_dims 1): give more than 128 pairs (raise "
        "--max_sentences)")
    other = tmp_path / "other.pt"
    Mask.load(masks["half"]).save(other, {"task": "ner", "languages": ["fr"], "model": "xlm-roberta-base"})
    with pytest.raises(SystemExit):
        run_script("representation_similarity.py", *common, "--tsv", str(tsv), "--src_mask", str(masks["half"]),
                   "--tgt_mask", str(other))
    assert "the masks come from different models" in capsys.readouterr().err
    broken = tmp_path / "broken.tsv"
    broken.write_text("one\ttwo\nonly one field\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        run_script("representation_similarity.py", *common, "--tsv", str(broken), "--src_lang", "en",
                   "--tgt_lang", "fr")
    assert "line 2: expected 'source<TAB>target'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_script("representation_similarity.py", *common, "--tsv", str(tsv), "--compare", "dense_vs_ticket")
    assert "needs --src_mask or --tgt_mask" in capsys.readouterr().err


def test_killed_before_its_figure_is_not_complete(tmp_path, tiny_models, run_script, monkeypatch):
    """representations_<name>.json (the completion file) is written after the CSV and the figure."""
    from utils.analysis import plots

    out = tmp_path / "out"
    args = ("--model_name_or_path", str(tiny_models / "mbert-tiny"), "--tsv", str(_tsv(tmp_path, 40)),
            "--src_lang", "en", "--tgt_lang", "fr", "--cca_dims", "8", "--output_dir", str(out))

    def killed(*args, **kwargs):
        raise RuntimeError("killed while plotting")

    with monkeypatch.context() as patch:
        patch.setattr(plots, "per_layer_lines", killed)
        with pytest.raises(RuntimeError, match="killed while plotting"):
            run_script("representation_similarity.py", *args)
    assert (out / "representations_en-fr.csv").is_file() and not (out / "representations_en-fr.json").exists()
    run_script("representation_similarity.py", *args)
    assert (out / "representations_en-fr.json").is_file() and (out / "representations_en-fr.png").is_file()

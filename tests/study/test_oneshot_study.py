"""A study's one-shot stage (issue 20 item 5): the runs it plans, its checks, the transfer matrix's arithmetic, and
a whole tiny study on the tiny Llama with its report."""
import json
import math

import pytest
import torch

from tests.conftest import REPO
from utils.analysis.oneshot_transfer import share_better, transfer_matrix
from utils.infra.errors import UserError
from utils.study.plan import load_study

LANGS = ["en", "fr", "es"]


def oneshot_study(tmp_path, model, **changes) -> dict:
    spec = {"model": str(model), "languages": LANGS, "methods": ["wanda", "magnitude"], "sparsity": 0.5,
            "calibration_file": "data/mlm/{lang}.train.json", "calibration_samples": 4, "calibration_seq_len": 32,
            "eval_files": "data/mlm/{lang}.valid.json", "eval_seq_len": 32, "max_eval_windows": 3}
    spec.update(changes.pop("oneshot", {}))
    study = {"name": "os", "study_dir": str(tmp_path / "study"), "seeds": [1], "oneshot": spec, **changes}
    return study


def write(tmp_path, study: dict) -> str:
    path = tmp_path / "os.json"
    path.write_text(json.dumps(study))
    return str(path)


def test_plan_run_ids(tmp_path):
    study = oneshot_study(tmp_path, "some/model", seeds=[1, 2], oneshot={"structures": ["unstructured", "2:4"]},
                          retrieval={"pairs": ["en-fr"], "tsv": "data/parallel/{pair}.tsv"})
    plan = load_study(write(tmp_path, study))
    prune = sorted(r for r in plan.runs if r.startswith("oneshot/"))
    assert prune == sorted([f"oneshot/{m}/{lang}/s{seed}" for m in ("wanda", "wanda_2-4") for lang in LANGS
                            for seed in (1, 2)] + ["oneshot/magnitude/all/s1", "oneshot/magnitude_2-4/all/s1"])
    assert plan.runs["oneshot/wanda_2-4/fr/s2"].config["structure"] == "2:4"
    assert plan.runs["oneshot/wanda/fr/s2"].config["data_language"] == "fr"
    assert "calibration_file" not in plan.runs["oneshot/magnitude/all/s1"].config
    loo = sorted(r for r in plan.runs if r.startswith("consensus/"))
    assert loo == [f"consensus/oneshot_wanda/majority_no_{lang}/50/s1" for lang in sorted(LANGS)]
    es = plan.runs["consensus/oneshot_wanda/majority_no_es/50/s1"]
    assert es.deps == ["oneshot/wanda/en/s1", "oneshot/wanda/fr/s1"] and es.config["sparsity"] == 50.0
    assert sorted(r for r in plan.runs if r.startswith("similarity/")) == [
        "similarity/oneshot_wanda/50/all_seeds", "similarity/oneshot_wanda/50/s1",
        "similarity/oneshot_wanda_2-4/50/all_seeds", "similarity/oneshot_wanda_2-4/50/s1"]
    assert plan.runs["similarity/oneshot_wanda/50/s1"].config["by"] == "head"
    ppl = plan.runs["perplexity/oneshot/50"]
    assert ppl.config["labels"] == ["wanda/en", "wanda/fr", "wanda/es", "wanda/majority_no_en", "wanda/majority_no_fr",
                                    "wanda/majority_no_es", "wanda_2-4/en", "wanda_2-4/fr", "wanda_2-4/es",
                                    "magnitude/all", "magnitude_2-4/all"]
    assert ppl.config["random_sparsity"] == 0.5 and ppl.config["max_windows"] == 3
    assert ppl.config["eval_files"] == ",".join(f"{lang}=data/mlm/{lang}.valid.json" for lang in LANGS)
    assert {"retrieval/dense/en-fr", "retrieval/oneshot_wanda/50/en-fr/s1"} <= set(plan.runs)
    assert plan.runs["retrieval/oneshot_wanda/50/en-fr/s1"].config["tgt_mask"].endswith(
        "oneshot/wanda/fr/s1/masks/sparsity_50.pt")
    assert "summary" not in plan.runs  # nothing trains


def test_dtype_reaches_every_run_that_loads_the_model(tmp_path):
    study = oneshot_study(tmp_path, "some/model", oneshot={"dtype": "bfloat16", "cka_dims": 4, "neurons": {}},
                          retrieval={"pairs": ["en-fr"], "tsv": "data/parallel/{pair}.tsv"})
    plan = load_study(write(tmp_path, study))
    loads = {"prune_oneshot.py", "mask_perplexity.py", "sentence_retrieval.py", "representation_similarity.py",
             "language_neurons.py"}
    assert loads == {run.script for run in plan.runs.values() if "model_name_or_path" in run.config}
    for run in plan.runs.values():
        assert run.config.get("dtype") == ("bfloat16" if run.script in loads else None), run.id
    assert plan.runs["oneshot/wanda/en/s1"].origins["dtype"] == "oneshot.dtype"


@pytest.mark.parametrize("change,message", [
    ({"oneshot": {"calibration_samples": 12, "calibration_batch_size": 8}},
     "oneshot.calibration_batch_size 8 must be >= 1 and divide calibration_samples 12"),
    ({"oneshot": {"dtype": "float8"}}, "oneshot: 'dtype' must be one of 'float32', 'bfloat16', 'float16'"),
    ({"oneshot": {"methods": ["wanda", "obs"]}}, "oneshot.methods: unknown method 'obs'"),
    ({"oneshot": {"structures": ["2:4"], "sparsity": 0.6}}, "oneshot.structures"),
    ({"oneshot": {"eval_files": "data/mlm/en.valid.json"}}, "oneshot.eval_files must contain '{lang}'"),
    ({"oneshot": {"calibraton_file": "x"}}, "unknown key 'calibraton_file'"),
    ({"oneshot": {"languages": ["en", "../x"]}}, "oneshot.languages[1]"),
])
def test_bad_oneshot_stage_is_one_line(tmp_path, change, message):
    with pytest.raises(UserError, match=None) as error:
        load_study(write(tmp_path, oneshot_study(tmp_path, "some/model", **change)))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_calibration_file_missing_is_named_before_anything_runs(tmp_path, tiny_models):
    from utils.study.checks import check_study

    study = oneshot_study(tmp_path, tiny_models / "llama-tiny", oneshot={"calibration_file": "nowhere/{lang}.txt"})
    with pytest.raises(UserError) as error:
        check_study(load_study(write(tmp_path, study)))
    assert "oneshot/wanda/en/s1" in str(error.value) and "nowhere/en.txt" in str(error.value)


def test_transfer_matrix_arithmetic():
    ppl = {"dense": {"en": 10.0, "fr": 20.0}, "w/en": {"en": 12.0, "fr": 30.0}, "w/fr": {"en": 15.0, "fr": 24.0},
           "w/majority_no_fr": {"en": 11.0, "fr": 26.0}, "random": {"en": 100.0, "fr": 200.0}}
    m = transfer_matrix({"masks": [{"label": k, "perplexity": v} for k, v in ppl.items()]})
    assert m.languages == ["en", "fr"] and [r.label for r in m.rows] == list(ppl)
    assert m.row("w/en").increase == pytest.approx({"en": 0.2, "fr": 0.5})
    en, fr = m.own
    assert (en.method, en.language, en.own, en.others, en.advantage) == ("w", "en", pytest.approx(0.2),
                                                                          pytest.approx(0.5), pytest.approx(0.3))
    assert en.leave_one_out is None and fr.leave_one_out == pytest.approx(0.3)
    assert fr.own == pytest.approx(0.2) and fr.others == pytest.approx(0.5)
    assert share_better(m.own) == 1.0


def direct_perplexity(model, tokenizer, path: str, seq_len: int, windows: int) -> float:
    """Tokens of every document joined by EOS, cut into consecutive stretches of seq_len - 1 tokens, each after the
    tokenizer's <bos> (this tokenizer adds one: the test says so), mean next-token cross-entropy."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    assert tokenizer("a")["input_ids"] == [tokenizer.bos_token_id, *plain]
    docs = [json.loads(line)["text"] for line in open(path, encoding="utf-8") if line.strip()]
    ids: list[int] = []
    for i, doc in enumerate(docs):
        ids += ([tokenizer.eos_token_id] if i and tokenizer.eos_token_id is not None else []) + \
            tokenizer(doc, add_special_tokens=False)["input_ids"]
    losses, step = [], seq_len - 1
    with torch.no_grad():
        for w in range(min(windows, len(ids) // step)):
            x = torch.tensor([[tokenizer.bos_token_id] + ids[w * step:(w + 1) * step]])
            logits = model(input_ids=x).logits[0, :-1]
            losses.append(torch.nn.functional.cross_entropy(logits.float(), x[0, 1:], reduction="sum").item())
    return math.exp(sum(losses) / (len(losses) * (seq_len - 1)))


@pytest.mark.slow
def test_tiny_oneshot_study_end_to_end(tmp_path, tiny_models, monkeypatch):
    """Three languages, Wanda and magnitude, one seed: masks, leave-one-out majorities, the transfer matrix (dense
    column = a direct computation), Jaccard, language-specific weights, retrieval and CKA, and the report."""
    import study as study_script
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from utils.core.masks import Mask

    model_dir = tiny_models / "llama-tiny"
    monkeypatch.chdir(REPO)
    study = oneshot_study(tmp_path, model_dir, oneshot={"cka_dims": 4},
                          retrieval={"pairs": ["en-fr"], "tsv": "data/parallel/{pair}.tsv", "max_sentences": 24})
    assert study_script.main([write(tmp_path, study)]) == 0
    root = tmp_path / "study"
    result = json.loads((root / "perplexity/oneshot/50/mask_perplexity.json").read_text())
    m = transfer_matrix(result)
    assert m.languages == LANGS
    assert [r.label for r in m.rows] == ["dense", "random", "wanda/en", "wanda/fr", "wanda/es", "wanda/majority_no_en",
                                         "wanda/majority_no_fr", "wanda/majority_no_es", "magnitude/all"]
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    for lang in LANGS:
        expected = direct_perplexity(model, tokenizer, f"data/mlm/{lang}.valid.json", 32, 3)
        assert m.row("dense").perplexity[lang] == pytest.approx(expected, rel=1e-4), lang
    assert {o.language for o in m.own} == set(LANGS) and all(o.leave_one_out is not None for o in m.own)
    for lang in LANGS:
        loo = Mask.load(root / f"consensus/oneshot_wanda/majority_no_{lang}/50/s1/mask.pt")
        assert loo.sparsity == 0.5
    report = (root / "report.md").read_text()
    table = next(t for s in json.loads((root / "report.json").read_text())["sections"] for t in s["tables"]
                 if t["name"] == "perplexity_oneshot_50")
    assert table["header"] == ["mask \\ eval", *LANGS] and len(table["rows"]) == 9
    assert table["rows"][0][1:] == [format(round(m.row("dense").perplexity[t], 4), ".4f") for t in LANGS]
    for name in ("Own-language advantage", "Language-specific weights per layer", "Jaccard per matrix type",
                 "Linear CKA per layer en-fr", "Sentence retrieval en -> fr"):
        assert name in report, name


# ---------------------------------------------------------------------------------------------------------------
# oneshot.neurons: LAPE's language-specific neurons of the one-shot model (issue 22 items 3-4)
# ---------------------------------------------------------------------------------------------------------------

NEURONS = {"max_lines": 12, "max_eval_lines": 3, "max_length": 24, "top_rate": 0.1, "activation_bar_ratio": 0.8,
           "permutations": 20}


def test_neurons_run_is_planned_once_over_every_language(tmp_path, capsys, monkeypatch):
    """One run (LAPE is joint over the languages): the calibration text, every eval language's held-out text, the
    first seed's masks of the first calibrated unstructured method; the dry run shows it after those masks."""
    import study as study_script

    monkeypatch.chdir(REPO)
    study = oneshot_study(tmp_path, "some/model", seeds=[3, 4],
                          oneshot={"methods": ["magnitude", "wanda"], "structures": ["2:4", "unstructured"],
                                   "eval_languages": ["fr", "en"], "neurons": {"top_rate": 0.05},
                                   "seconds_per_run": {"neurons": 90}})
    plan = load_study(write(tmp_path, study))
    assert [r for r in plan.runs if r.startswith("neurons/")] == ["neurons/oneshot_wanda/50/s3"]
    run = plan.runs["neurons/oneshot_wanda/50/s3"]
    masks = {lang: f"{plan.study_dir}/oneshot/wanda/{lang}/s3/masks/sparsity_50.pt" for lang in LANGS}
    assert run.script == "language_neurons.py" and run.kind == "neurons"
    assert run.config == {"model_name_or_path": "some/model", "top_rate": 0.05,
                          "text_files": "data/mlm/{lang}.train.json", "languages": "en,fr,es",
                          "eval_files": "fr=data/mlm/fr.valid.json,en=data/mlm/en.valid.json",
                          "mask_dir": ",".join(f"{lang}={masks[lang]}" for lang in LANGS), "baseline_seed": 3,
                          "output_dir": f"{plan.study_dir}/neurons/oneshot_wanda/50/s3"}
    assert run.deps == sorted(f"oneshot/wanda/{lang}/s3" for lang in LANGS)
    custom = oneshot_study(tmp_path, "some/model", oneshot={"neurons": {"text_files": "t/{lang}.txt"}})
    assert load_study(write(tmp_path, custom)).runs["neurons/oneshot_wanda/50/s1"].config["text_files"] == "t/{lang}.txt"
    assert study_script.main([write(tmp_path, study), "--dry_run"]) == 0
    printed = capsys.readouterr().out
    block = printed[printed.index("] neurons/oneshot_wanda/50/s3"):].split("\n[")[0]
    assert "python language_neurons.py" in block
    assert f"after: {', '.join(sorted(f'oneshot/wanda/{lang}/s3' for lang in LANGS))}" in block
    assert "neurons        1       1                -  1.5 CPU-min (measured)" in printed


@pytest.mark.parametrize("neurons,message", [
    ({"top_rat": 0.1}, "os.json: oneshot.neurons: unknown key 'top_rat' (did you mean 'top_rate'?)"),
    ({"eval_files": "x/{lang}.txt"}, "oneshot.neurons: unknown key 'eval_files'"),
    ({"max_lines": "10"}, "oneshot.neurons: 'max_lines' must be int"),
    ({"text_files": "one.txt"}, "oneshot.neurons.text_files must contain '{lang}'"),
])
def test_bad_neurons_object_is_one_line(tmp_path, neurons, message):
    with pytest.raises(UserError) as error:
        load_study(write(tmp_path, oneshot_study(tmp_path, "some/model", oneshot={"neurons": neurons})))
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("change,message", [
    ({"methods": ["magnitude"], "neurons": {}}, "oneshot.neurons needs masks per language"),
    ({"languages": ["en"], "calibration_file": "data/mlm/en.train.json", "eval_files": "data/mlm/en.valid.json",
      "neurons": {}}, "oneshot.neurons: LAPE compares languages"),
])
def test_neurons_without_what_lape_needs_is_refused(tmp_path, change, message):
    with pytest.raises(UserError) as error:
        load_study(write(tmp_path, oneshot_study(tmp_path, "some/model", oneshot=change)))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_neurons_flags_and_text_are_checked_at_planning_time(tmp_path, tiny_models):
    """Through language_neurons.py's own parsing (a bad threshold) and its text files, naming the study-file key."""
    from utils.study.checks import check_study

    model = tiny_models / "llama-tiny"
    for neurons, expected in (({"top_rate": 2.0}, "(oneshot.neurons.top_rate): --top_rate must be"),
                              ({"text_files": str(tmp_path / "{lang}.txt")}, "(oneshot.neurons.text_files)")):
        study = oneshot_study(tmp_path, model, oneshot={"neurons": neurons})
        with pytest.raises(UserError) as error:
            check_study(load_study(write(tmp_path, study)))
        text = str(error.value)
        assert "run neurons/oneshot_wanda/50/s1" in text and expected in text and "\n" not in text, text


def test_tiny_oneshot_study_with_neurons_end_to_end(tmp_path, tiny_models, monkeypatch):
    """Two languages pruned by Wanda on the tiny Llama (gated FFN), then LAPE over both: the report has the neuron
    counts, the three ablation matrices (deactivated language x eval language) and the overlap with the masks, and
    the tables' CSVs hold what neurons.json holds."""
    import csv

    import study as study_script
    from utils.analysis.neuron_run import read_neurons

    monkeypatch.chdir(REPO)
    langs = ["en", "fr"]
    study = oneshot_study(tmp_path, tiny_models / "llama-tiny",
                          oneshot={"languages": langs, "methods": ["wanda"], "eval_languages": ["fr", "en", "es"],
                                   "random": False, "max_eval_windows": 1, "neurons": NEURONS})
    assert study_script.main([write(tmp_path, study)]) == 0
    root = tmp_path / "study"
    result = read_neurons(root / "neurons/oneshot_wanda/50/s1/neurons.json")
    assert result.languages == langs and result.ablation.eval_languages == ["fr", "en", "es"]
    assert result.selected == min(round(0.1 * sum(result.neurons_per_layer)), result.candidates) > 0
    assert result.mask_dir == {lang: str(root / f"oneshot/wanda/{lang}/s1/masks/sparsity_50.pt") for lang in langs}
    tables = {t["name"]: t for s in json.loads((root / "report.json").read_text())["sections"] for t in s["tables"]}
    slug = "oneshot_wanda_50_s1"
    counts = tables[f"neurons_{slug}"]
    assert counts["header"] == ["language", "decoder.0", "decoder.1", "total"]
    assert counts["rows"] == [[lang, *result.counts[lang], sum(result.counts[lang])] for lang in langs]
    for kind in ("language", "random", "frequency_matched"):
        table = tables[f"neurons_ablation_{slug}_{kind}"]
        assert table["header"] == ["deactivated", "fr", "en", "es"] and [r[0] for r in table["rows"]] == langs
        cells = result.ablation.relative[kind]
        assert table["rows"] == [[a, *(f"{100 * cells[a][e]:+.2f}" for e in ("fr", "en", "es"))] for a in langs]
        with open(root / "tables" / f"neurons_ablation_{slug}_{kind}.csv", newline="") as handle:
            assert list(csv.reader(handle)) == [table["header"], *table["rows"]]
    overlap = tables[f"neurons_overlap_{slug}"]
    with_neurons = [lang for lang in langs if sum(result.counts[lang])]
    assert with_neurons and {r[0] for r in overlap["rows"]} == set(with_neurons)
    assert [r[:3] for r in overlap["rows"] if r[1] == "all"] == [[lang, "all", sum(result.counts[lang])]
                                                                 for lang in with_neurons]
    assert "one-shot mask keeps" in overlap["guide"] and "ticket" not in overlap["guide"]
    report = (root / "report.md").read_text()
    for title in ("Language-specific neurons (LAPE)", "Neurons in their language's sub-network: neurons/oneshot_wanda",
                  "Perplexity change (%) with frequency_matched neurons deactivated"):
        assert title in report, title

"""Language-specific neurons (LAPE): a tiny Llama with planted language neurons, from which the selection must recover
exactly the planted set; ablation, the LAPE file, the neuron masks in the mask tools, the overlap statistic, errors."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from utils.analysis import neurons as N

LANGS = ("en", "fr", "de")
WORDS = 16  # per language: no random neuron fires on every word of a language by chance
HIDDEN, FFN, LAYERS = 16, 24, 2
RANDOM_DIMS = range(3, 10)  # each word's random +-1 signs; dims 0-2 say the language, 10-12 the planted outputs
ONE = 13  # +1 for every word: the planted neurons' up input
PLANTED = {"en": (5, 2), "fr": (11, 20), "de": (17, 8)}  # language -> neuron in layer 0, layer 1


def vocabulary() -> dict[str, int]:
    words = [f"{lang}{i}" for lang in LANGS for i in range(WORDS)]
    return {token: i for i, token in enumerate(["<pad>", "<unk>", "<s>", "</s>"] + words)}


def build_planted(folder: Path) -> None:
    """A Llama whose attention writes nothing and whose neuron PLANTED[l][i] fires exactly on language l's words
    (gate row 100 x the language's indicator dimension) and then raises the logits of l's words (down writes dim 10+k,
    the LM head reads it); the other neurons fire on random sign patterns shared by all languages."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = vocabulary()
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                            pad_token="<pad>").save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=HIDDEN, intermediate_size=FFN, num_hidden_layers=LAYERS,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64, hidden_act="silu",
                         tie_word_embeddings=False, bos_token_id=2, eos_token_id=3, pad_token_id=0)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        emb = torch.zeros(len(vocab), HIDDEN)
        head = torch.zeros(len(vocab), HIDDEN)
        for k, lang in enumerate(LANGS):
            for i in range(WORDS):
                row = vocab[f"{lang}{i}"]
                emb[row, :3] = -1.0
                emb[row, k] = 1.0
                emb[row, list(RANDOM_DIMS)] = torch.randint(0, 2, (len(RANDOM_DIMS),), generator=g).float() * 2 - 1
                emb[row, ONE] = 1.0
                head[row, 10 + k] = 1.0
        model.model.embed_tokens.weight.copy_(emb)
        model.lm_head.weight.copy_(head)
        for index, block in enumerate(model.model.layers):
            block.self_attn.o_proj.weight.zero_()
            gate = torch.zeros(FFN, HIDDEN)
            gate[:, list(RANDOM_DIMS)] = torch.randn(FFN, len(RANDOM_DIMS), generator=g)
            up = torch.zeros(FFN, HIDDEN)
            up[:, list(RANDOM_DIMS)] = torch.randn(FFN, len(RANDOM_DIMS), generator=g)
            down = torch.zeros(HIDDEN, FFN)
            down[14:, :] = 0.1 * torch.randn(HIDDEN - 14, FFN, generator=g)  # dims no gate and no logit reads
            for k, lang in enumerate(LANGS):
                j = PLANTED[lang][index]
                gate[j] = 0.0
                gate[j, k] = 100.0
                up[j] = 0.0
                up[j, ONE] = 1.0
                down[:, j] = 0.0
                down[10 + k, j] = 0.5
            block.mlp.gate_proj.weight.copy_(gate)
            block.mlp.up_proj.weight.copy_(up)
            block.mlp.down_proj.weight.copy_(down)
    model.save_pretrained(folder)


def write_text(path: Path, lang: str, lines: int, seed: int) -> None:
    rng = random.Random(seed)
    path.write_text("\n".join(" ".join(f"{lang}{rng.randrange(WORDS)}" for _ in range(rng.randint(4, 9)))
                              for _ in range(lines)) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("planted")
    build_planted(root / "model")
    for k, lang in enumerate(LANGS):
        write_text(root / f"{lang}.txt", lang, 40, seed=k)
        write_text(root / f"{lang}.valid.txt", lang, 12, seed=10 + k)
    return root


@pytest.fixture(scope="module")
def neuron_run(planted, tmp_path_factory) -> tuple[Path, dict]:
    """language_neurons.py on the planted model, with ablation; top_rate = 6 planted / 48 neurons."""
    from language_neurons import main

    out = tmp_path_factory.mktemp("neurons") / "out"
    result = main(["--model_name_or_path", str(planted / "model"), "--text_files", str(planted / "{lang}.txt"),
                   "--languages", ",".join(LANGS), "--eval_files", str(planted / "{lang}.valid.txt"),
                   "--top_rate", str(6 / (LAYERS * FFN)), "--output_dir", str(out)])
    return out, result


def test_selection_recovers_exactly_the_planted_neurons(neuron_run):
    out, result = neuron_run
    payload = torch.load(out / "lape_neurons.pt", weights_only=True)
    assert [[t.tolist() for t in per_layer] for per_layer in payload] == \
        [[[PLANTED[lang][0]], [PLANTED[lang][1]]] for lang in LANGS]
    assert result.counts == {lang: [1, 1] for lang in LANGS}
    assert result.selected == 6 and result.layers == ["decoder.0", "decoder.1"]
    assert result.activation_bar < 1.0 and result.filter_threshold < 1.0  # the planted p = 1 exceed both


def test_probabilities_match_a_hand_computed_count(neuron_run, planted):
    """Layer 0 sees the embeddings (attention writes nothing; RMSNorm keeps signs): p = share of text tokens whose
    embedding has a positive dot product with the neuron's gate row."""
    from transformers import AutoModelForCausalLM

    out, result = neuron_run
    stored = torch.load(out / "activation_probs.pt", weights_only=True)
    model = AutoModelForCausalLM.from_pretrained(planted / "model")
    emb, gate = model.model.embed_tokens.weight, model.model.layers[0].mlp.gate_proj.weight
    vocab = vocabulary()
    for k, lang in enumerate(LANGS):
        ids = torch.tensor([vocab[w] for line in (planted / f"{lang}.txt").read_text().split("\n") for w in line.split()])
        expected = ((emb[ids] @ gate.T) > 0).double().mean(dim=0)
        assert stored["tokens"][lang] == len(ids)
        assert torch.equal(stored["probs"][0][:, k], expected)
        for other, (j, _) in PLANTED.items():
            assert float(stored["probs"][0][j, k]) == (1.0 if other == lang else 0.0)


def test_ablation_raises_only_the_own_language_perplexity(neuron_run):
    _, result = neuron_run
    relative = result.ablation.relative
    for ablated in LANGS:
        for evaluated in LANGS:
            cell = relative["language"][ablated][evaluated]
            if ablated == evaluated:
                assert cell > 0.05
                assert cell > relative["random"][ablated][evaluated] + 0.05
                assert cell > relative["frequency_matched"][ablated][evaluated] + 0.05
            else:
                assert abs(cell) < 1e-5


def test_without_mask_on_the_weights_equals_the_ablation(neuron_run, planted):
    """Bias-free gated FFN: zeroing a neuron's gate/up rows and down column (the 'without' mask) is the ablation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from utils.analysis.neuron_run import NeuronArguments, batches, perplexity
    from utils.core.masks import Mask
    from utils.core.pruning import prunable_weights

    out, result = neuron_run
    model = AutoModelForCausalLM.from_pretrained(planted / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(planted / "model")
    Mask.load(out / "masks" / "without_fr.pt").apply_to_weights(prunable_weights(model))
    lines = (planted / "fr.valid.txt").read_text().split("\n")
    args = NeuronArguments(output_dir="unused", text_files="unused")
    ppl = perplexity(model, batches(tokenizer, [line for line in lines if line], args))
    assert ppl == pytest.approx(result.ablation.perplexity["language"]["fr"]["fr"], rel=1e-5)


def test_neuron_result_round_trips_through_neurons_json(neuron_run):
    """neurons.json is the typed result as written (to_json), and reads back equal (read_neurons); a file of the
    earlier layout (no 'eval_files', no 'overlap') reads too."""
    import math

    from utils.analysis.neuron_run import read_neurons
    from utils.infra.io import read_json

    out, result = neuron_run
    assert read_json(out / "neurons.json") == json.loads(json.dumps(result.to_json()))
    again = read_neurons(out / "neurons.json")
    assert again == result and isinstance(again.settings, N.LapeSettings)
    assert isinstance(again.ablation, N.AblationResult) and again.ablation.eval_languages == list(LANGS)
    assert list(again.eval_files) == list(LANGS) and again.overlap is None and again.mask_dir is None
    row = N.OverlapRow("en", "all", 2, 0.25, 0.1, 0.0, math.nan, 1.0)
    with_overlap = N.NeuronResult.from_json(json.loads(json.dumps({**result.to_json(), "overlap": [row.__dict__]})))
    assert with_overlap.overlap[0].language == "en" and math.isnan(with_overlap.overlap[0].z)
    old = {k: v for k, v in result.to_json().items() if k not in ("eval_files", "ablation", "mask_dir", "overlap")}
    older = N.NeuronResult.from_json(old)
    assert older.counts == result.counts and older.ablation is None and older.overlap is None


def test_lape_file_round_trips(neuron_run):
    out, _ = neuron_run
    payload = torch.load(out / "lape_neurons.pt", weights_only=True)
    neurons = N.read_lape_payload(payload, LANGS, [FFN, FFN], "lape_neurons.pt")
    selection = N.Selection(list(LANGS), ["decoder.0", "decoder.1"], neurons, 0.0, 0.0, 6, 6, torch.zeros(1))
    again = N.lape_payload(selection)
    assert all(torch.equal(a, b) and a.dtype == torch.long for x, y in zip(payload, again) for a, b in zip(x, y))
    with pytest.raises(N.UserError, match="below 24"):
        N.read_lape_payload([[torch.tensor([30]), torch.tensor([1])]] * 3, LANGS, [FFN, FFN], "f")


def test_neuron_masks_keep_exactly_the_neurons_weights(neuron_run):
    from utils.core.masks import Mask

    out, _ = neuron_run
    kept = Mask.load(out / "masks" / "neurons_en.pt")
    assert kept.num_kept == 2 * 3 * HIDDEN  # two neurons: a gate row, an up row, a down column each
    assert bool(kept["model.layers.0.mlp.gate_proj.weight"][PLANTED["en"][0]].all())
    assert bool(kept["model.layers.1.mlp.down_proj.weight"][:, PLANTED["en"][1]].all())
    without = Mask.load(out / "masks" / "without_en.pt")
    assert without.num_kept == without.num_weights - 2 * 3 * HIDDEN


def test_neuron_masks_feed_mask_similarity_and_mask_ops(neuron_run, run_script, tmp_path):
    from utils.core.masks import Mask

    out, _ = neuron_run
    masks = out / "masks"
    result = run_script("mask_similarity.py", "--masks", str(masks / "neurons_en.pt"), str(masks / "neurons_fr.pt"),
                        "--output_dir", str(tmp_path / "sim"), "--no_plots")
    assert result.result.pairs[0].overall.jaccard == 0.0  # disjoint neuron sets
    run_script("mask_ops.py", "--operation", "intersection", "--masks", str(masks / "without_en.pt"),
               str(masks / "without_fr.pt"), "--output", str(tmp_path / "both.pt"))
    both = Mask.load(tmp_path / "both.pt")
    assert both.num_kept == both.num_weights - 4 * 3 * HIDDEN
    run_script("mask_ops.py", "--operation", "union", "--masks", str(masks / "neurons_en.pt"),
               str(masks / "neurons_de.pt"), "--output", str(tmp_path / "union.pt"), "--allow_empty_matrices")
    assert Mask.load(tmp_path / "union.pt").num_kept == 4 * 3 * HIDDEN


def test_overlap_statistic_against_a_hand_count():
    """en's mask keeps neuron 3's whole down column and half of neuron 7's; fr drops both, de keeps neuron 7's."""
    from collections import OrderedDict

    from utils.core.masks import Mask

    down = "model.layers.0.mlp.down_proj.weight"
    layer = N.FfnLayer("decoder.0", "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.down_proj",
                       ((down, 1),), 8)
    en, fr, de = (torch.ones(4, 8, dtype=torch.bool) for _ in range(3))
    fr[:, 3] = False
    de[:, 3] = False
    en[:2, 7] = False
    fr[:, 7] = False
    masks = {lang: Mask(OrderedDict([(down, t)])) for lang, t in zip(LANGS, (en, fr, de))}
    share = N.specific_share(masks, [layer], "en")[0]
    assert share.tolist() == [0, 0, 0, 1.0, 0, 0, 0, 0]  # 7: de keeps it, so not a majority of others drops it
    de[:, 7] = False
    share = N.specific_share({**masks, "de": Mask(OrderedDict([(down, de)]))}, [layer], "en")[0]
    assert share.tolist() == [0, 0, 0, 1.0, 0, 0, 0, 0.5]
    rows = N.permutation_rows("en", ["decoder.0"], [share], [torch.tensor([3])], 4000, torch.Generator().manual_seed(0))
    assert [r.layer for r in rows] == ["decoder.0", "all"]
    assert rows[0].lape_mean == 1.0 and rows[0].random_mean == pytest.approx(1.5 / 8, abs=0.02)
    assert rows[0].p_high == pytest.approx(1 / 8, abs=0.02)  # only neuron 3 reaches 1.0


def test_overlap_runs_from_the_script(neuron_run, planted, tmp_path):
    from language_neurons import main

    out, _ = neuron_run
    result = main(["--model_name_or_path", str(planted / "model"), "--text_files", str(planted / "{lang}.txt"),
                   "--languages", ",".join(LANGS), "--top_rate", str(6 / (LAYERS * FFN)),
                   "--mask_dir", str(out / "masks" / "without_{lang}.pt"), "--permutations", "50",
                   "--output_dir", str(tmp_path / "o")])
    rows = {(r.language, r.layer): r for r in result.overlap}
    assert rows[("en", "all")].neurons == 2 and rows[("en", "all")].lape_mean == 0.0  # en's mask drops them
    assert (tmp_path / "o" / "neuron_overlap.csv").is_file()


def test_text_files_may_be_json_lines_as_the_calibration_text_is(tmp_path):
    """A study's one-shot calibration file (JSON lines with "text") is language_neurons.py's default text: each
    document one sequence; a .txt file is read line by line even when a line looks like JSON."""
    from utils.analysis.neuron_run import read_lines

    docs = [{"id": 1, "text": "en1 en2\nen3"}, {"id": 2, "text": "  "}, {"id": 3, "text": " fr4 "}]
    (tmp_path / "en.json").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    assert read_lines(tmp_path / "en.json", "en", 5) == ["en1 en2\nen3", "fr4"]
    assert read_lines(tmp_path / "en.json", "en", 1) == ["en1 en2\nen3"]
    (tmp_path / "en.txt").write_text('{"text": "x"}\n\nplain\n', encoding="utf-8")
    assert read_lines(tmp_path / "en.txt", "en", 5) == ['{"text": "x"}', "plain"]


def test_lape_selection_by_hand():
    """Six neurons, two languages: quantiles and entropies as LAPE's code computes them."""
    probs = torch.tensor([[0.9, 0.0], [0.5, 0.5], [0.0, 0.8], [0.1, 0.1], [0.6, 0.3], [0.2, 0.0]], dtype=torch.float64)
    stats = N.ActivationProbs(["a", "b"], ["decoder.0"], [probs], {"a": 1, "b": 1})
    selection = N.lape_select(stats, N.LapeSettings(filter_rate=0.75, top_rate=0.5, activation_bar_ratio=0.75))
    # 12 values, k = 9: the 9th smallest is 0.5; neurons 0, 2 and 4 exceed it; the 3 lowest entropies: 0, 2 (0), 4
    assert selection.filter_threshold == 0.5 and selection.candidates == 3 and selection.selected == 3
    assert [t.tolist() for t in selection.neurons["a"]] == [[0, 4]] and [t.tolist() for t in selection.neurons["b"]] == [[2]]
    assert float(selection.entropy[1]) == float("inf") and float(selection.entropy[0]) == 0.0


BAD = {
    "missing text file": (["--text_files", "en={d}/en.txt,fr={d}/missing.txt"], "the fr file"),
    "no tokens": (["--text_files", "en={d}/en.txt,fr={d}/specials.txt"], "fr: its text gives no token to count"),
    "empty file": (["--text_files", "en={d}/en.txt,fr={d}/blank.txt"], "holds no line of text"),
    "template without languages": (["--text_files", "{d}/{{lang}}.txt"], "give --languages"),
    "one mask": (["--text_files", "en={d}/en.txt,fr={d}/fr.txt", "--mask_dir", "en={d}/en.txt"], "two or more"),
    "bad rate": (["--text_files", "en={d}/en.txt,fr={d}/fr.txt", "--top_rate", "0"], "--top_rate must be"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line(case, planted, tmp_path, capsys):
    from language_neurons import main

    (planted / "specials.txt").write_text("</s> <pad>\n<s>\n", encoding="utf-8")
    (planted / "blank.txt").write_text("\n  \n", encoding="utf-8")
    flags, message = BAD[case]
    argv = ["--model_name_or_path", str(planted / "model"), "--output_dir", str(tmp_path / "o")]
    argv += [flag.format(d=planted) for flag in flags]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and message in err[0], err


def test_model_without_ffn_and_unknown_activation_are_refused():
    from torch import nn
    from transformers import LlamaConfig

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.mix = nn.Linear(4, 4)

    class NoFfn(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([Block(), Block()])

    with pytest.raises(N.UserError, match="found no FFN"):
        N.find_ffn_layers(NoFfn())
    with pytest.raises(N.UserError, match="'tanh'"):
        N.check_activation(LlamaConfig(hidden_act="tanh"))


def test_encoder_ablation_is_refused_before_loading(planted, tmp_path, capsys):
    from transformers import BertConfig, BertModel

    from language_neurons import main

    folder = tmp_path / "bert"
    BertModel(BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=8)).save_pretrained(folder)
    with pytest.raises(SystemExit):
        main(["--model_name_or_path", str(folder), "--tokenizer_name", str(planted / "model"),
              "--text_files", f"en={planted}/en.txt,fr={planted}/fr.txt",
              "--eval_files", f"en={planted}/en.txt,fr={planted}/fr.txt", "--output_dir", str(tmp_path / "o")])
    assert "causal LMs only" in capsys.readouterr().err


def test_a_rerun_with_fewer_languages_leaves_no_stale_files(planted, tmp_path):
    from language_neurons import main

    out = tmp_path / "o"
    common = ["--model_name_or_path", str(planted / "model"), "--output_dir", str(out), "--top_rate", "0.125"]
    main(common + ["--text_files", str(planted / "{lang}.txt"), "--languages", ",".join(LANGS),
                   "--eval_files", str(planted / "{lang}.valid.txt")])
    main(common + ["--text_files", f"en={planted}/en.txt,fr={planted}/fr.txt"])
    assert sorted(p.name for p in (out / "masks").glob("*.pt")) == ["neurons_en.pt", "neurons_fr.pt", "without_en.pt",
                                                                    "without_fr.pt"]
    assert not list(out.glob("ablation_*.csv"))
    assert len(torch.load(out / "lape_neurons.pt", weights_only=True)) == 2


def test_study_stage_and_report_section(neuron_run, planted, tmp_path, monkeypatch):
    """A study with 'neurons' plans one language_neurons.py run per task, reading the first seed's tickets at the
    first transfer sparsity; the report shows its counts, ablation matrices and overlap table."""
    import shutil

    from tests.conftest import REPO
    from utils.study.plan import load_study
    from utils.study.report import neurons_section

    monkeypatch.chdir(REPO)
    spec = {"name": "t", "study_dir": str(tmp_path / "study"), "seeds": [1], "transfer": "none",
            "transfer_sparsities": [50],
            "tasks": {"clm": {"kind": "clm", "imp_config": "configs/offline/LT_pretrain_clm.json", "model": str(planted / "model"),
                              "languages": list(LANGS), "imp_overrides": {"train_file": "data/mlm/{lang}.train.json",
                                                                          "validation_file": "data/mlm/{lang}.valid.json"}}},
            "neurons": {"text_files": str(planted / "{lang}.txt"), "eval_files": str(planted / "{lang}.valid.txt"),
                        "top_rate": 0.125}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    study = load_study(str(tmp_path / "s.json"))
    run = study.runs["neurons/clm"]
    assert run.script == "language_neurons.py" and run.deps == [f"imp/clm/{lang}/s1" for lang in sorted(LANGS)]
    assert run.config["languages"] == "en,fr,de" and run.config["top_rate"] == 0.125
    assert run.config["mask_dir"].split(",")[0] == f"en={study.runs['imp/clm/en/s1'].run_dir}/masks/sparsity_50.pt"
    out, _ = neuron_run
    shutil.copytree(out, run.run_dir)  # what the run writes (its masks' tickets are not trained here)
    section = neurons_section(study, tmp_path)
    names = [t["name"] for t in section["tables"]]
    assert names == ["neurons_clm", "neurons_ablation_clm_language", "neurons_ablation_clm_random",
                     "neurons_ablation_clm_frequency_matched"]
    assert section["tables"][0]["rows"] == [[lang, 1, 1, 2] for lang in LANGS]
    ablation = section["tables"][1]["rows"]
    assert [row[0] for row in ablation] == list(LANGS) and float(ablation[0][1]) > 5 and float(ablation[0][2]) == 0
    with pytest.raises(N.UserError, match="two or more"):
        (tmp_path / "s.json").write_text(json.dumps({**spec, "neurons": {**spec["neurons"], "languages": ["en"]}}))
        load_study(str(tmp_path / "s.json"))


def test_ffn_layers_of_gpt2_bert_and_t5(bert_tagger, tiny_t5):
    """Where the neurons are: GPT-2's Conv1D (c_fc columns, c_proj rows), BERT's intermediate rows and output
    columns, and T5's encoder (gated wi_0 fires; wi_1 rows and wo columns)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=8, n_inner=12, n_layer=2, n_head=2))
    first = N.find_ffn_layers(gpt2)[0]
    assert (first.layer, first.fires, first.down, first.size) == ("decoder.0", "transformer.h.0.mlp.c_fc",
                                                                  "transformer.h.0.mlp.c_proj", 12)
    assert dict(first.weights) == {"transformer.h.0.mlp.c_fc.weight": 1, "transformer.h.0.mlp.c_proj.weight": 0}
    bert = N.find_ffn_layers(bert_tagger)
    assert [l.layer for l in bert] == ["encoder.0", "encoder.1", "encoder.2"] and bert[0].size == 32
    assert dict(bert[0].weights) == {"bert.encoder.layer.0.intermediate.dense.weight": 0,
                                     "bert.encoder.layer.0.output.dense.weight": 1}
    t5 = N.find_ffn_layers(tiny_t5, stack="encoder")
    assert [l.layer for l in t5] == ["encoder.0", "encoder.1"] and t5[0].fires.endswith("DenseReluDense.wi_0")
    assert sorted(dict(t5[0].weights).values()) == [0, 0, 1] and t5[0].size == 32
    from utils.core.pruning import prunable_weights

    mask = N.neuron_mask(prunable_weights(gpt2), N.find_ffn_layers(gpt2), [torch.tensor([3]), torch.tensor([])])
    assert bool(mask["transformer.h.0.mlp.c_fc.weight"][:, 3].all()) and mask.num_kept == 2 * 8

"""summarize_results: the winning-ticket criterion (both directions), epsilon, the transfer matrix, zero-shot."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from utils.infra.errors import UserError
from utils.analysis.results import Ticket, summarize, winning_ticket, within_epsilon


def write_imp(root: Path, task: str, langs: list[str], seed: int, metrics: list[float | None], *, metric: str = "f1",
              greater: bool = True, model: str = "tiny_models/mbert-tiny", extra_eval: dict | None = None) -> Path:
    """An imp_results.json as utils/core/imp.py writes it (10% per round), in a folder whose name says nothing."""
    rounds = []
    for k, value in enumerate(metrics):
        evaluation = {lang: {metric: value} for lang in langs} if value is not None else {}
        for lang, offset in (extra_eval or {}).items():
            evaluation[lang] = {metric: value - offset}
        rounds.append({"round": k, "sparsity": round(0.1 * k, 10), "headline": value, "eval": evaluation, "steps": 1,
                       "train_loss": 0.5, "seconds": 0.1, "history": [], "mask_checksum": "x"})
    data = {"script": "LT_x.py", "task": task, "languages": langs, "model": model, "seed": seed, "metric": metric,
            "greater_is_better": greater, "schedule": [r["sparsity"] for r in rounds], "rounds": rounds,
            "complete": True, "config": {}, "schema_version": 2}
    path = root / f"run{len(list(root.rglob('*.json')))}" / "imp_results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def write_finetune(root: Path, task: str, lang: str, value: float, *, source: tuple[str, str] | None = None,
                   sparsity: float = 0.5, pruning_type: str = "lth", seed: int = 1, metric: str = "f1",
                   greater: bool = True, extra_eval: dict | None = None, model: str = "tiny_models/mbert-tiny",
                   weight_init: str = "pre") -> Path:
    mask = {}
    if pruning_type == "lth":
        mask = {"path": "somewhere/sparsity_50.pt",
                "source": {"task": source[0], "languages": [source[1]], "sparsity": sparsity, "seed": 7}}
    evaluation = {lang: {metric: value}}
    for other, offset in (extra_eval or {}).items():
        evaluation[other] = {metric: value - offset}
    data = {"script": "x_fine_tune.py", "task": task, "languages": [lang], "model": model,
            "weight_init": weight_init, "pruning_type": pruning_type, "mask": mask,
            "sparsity": sparsity if pruning_type != "none" else 0.0, "seed": seed, "metric": metric,
            "greater_is_better": greater, "headline": value, "eval": evaluation, "config": {}, "schema_version": 2}
    path = root / f"ft{len(list(root.rglob('*.json')))}" / "finetune_results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def test_within_epsilon_both_directions():
    assert within_epsilon(0.80, 0.79, 0.01, greater_is_better=True)
    assert not within_epsilon(0.80, 0.7899, 0.01, greater_is_better=True)
    assert within_epsilon(0.80, 0.95, 0.0, greater_is_better=True)  # better than dense always qualifies
    assert within_epsilon(4.0, 4.1, 0.1, greater_is_better=False)  # perplexity: higher is worse
    assert not within_epsilon(4.0, 4.1001, 0.1, greater_is_better=False)
    assert within_epsilon(4.0, 3.0, 0.0, greater_is_better=False)


def test_winning_ticket_is_the_highest_sparsity_within_epsilon():
    up = [(0.0, 0.80), (0.1, 0.805), (0.2, 0.795), (0.3, 0.789), (0.4, 0.792), (0.5, 0.70)]
    assert winning_ticket(up, 0.80, 0.01, True) == Ticket(0.4, 0.792)
    assert winning_ticket(up, 0.80, 0.0, True) == Ticket(0.1, 0.805)
    down = [(0.0, 4.0), (0.1, 3.9), (0.2, 4.1), (0.3, 4.2), (0.4, 6.0)]
    assert winning_ticket(down, 4.0, 0.1, False) == Ticket(0.2, 4.1)
    assert winning_ticket(down, 4.0, 0.0, False) == Ticket(0.1, 3.9)
    assert winning_ticket(down, None, 0.1, False) is None


def test_imp_summary_epsilon_from_seeds_and_mean_curve(tmp_path):
    for seed, dense in ((1, 0.80), (2, 0.82), (3, 0.84)):  # std (ddof=1) of the dense metric = 0.02
        write_imp(tmp_path, "ner", ["en"], seed, [dense, dense + 0.01, dense - 0.015, dense - 0.03, dense - 0.1])
    write_imp(tmp_path / "elsewhere", "mlm", ["en"], 5, [4.0, 3.95, 4.05, 4.3], metric="perplexity", greater=False)
    summary = summarize([tmp_path])
    ner, mlm = (next(g for g in summary.imp if g.task == t) for t in ("ner", "mlm"))
    assert ner.epsilon == pytest.approx(0.02)
    assert [c.n for c in ner.curve] == [3] * 5
    assert ner.curve[1].mean == pytest.approx(0.83)
    assert ner.curve[0].std == pytest.approx(0.02)
    assert ner.winning_ticket.sparsity == pytest.approx(0.2)  # 0.3 drops 0.03 > 0.02
    assert all(r.winning_ticket.sparsity == pytest.approx(0.2) for r in ner.runs)
    # one seed, no --epsilon: epsilon 0, said so; lower-is-better keeps 10% (3.95 < 4.0), not 20% (4.05)
    assert mlm.epsilon == 0.0 and not mlm.greater_is_better
    assert mlm.winning_ticket.sparsity == pytest.approx(0.1)
    assert any("mlm/en: one seed only" in n for n in summary.notes)
    relaxed = summarize([tmp_path], epsilon=0.06)
    assert next(g for g in relaxed.imp if g.task == "mlm").winning_ticket.sparsity == pytest.approx(0.2)


def test_transfer_matrix_relative_figures_and_zero_shot(tmp_path):
    scores = {("en", "en"): 0.80, ("en", "fr"): 0.76, ("fr", "fr"): 0.80, ("fr", "en"): 0.78,
              ("ur", "ur"): 0.90, ("ur", "en"): 0.72, ("en", "ur"): 0.90}
    for (source, target), value in scores.items():
        write_finetune(tmp_path, "ner", target, value, source=("ner", source), extra_eval={"de": 0.1})
    write_finetune(tmp_path, "ner", "en", 0.84, pruning_type="none")
    write_finetune(tmp_path, "ner", "en", 0.60, pruning_type="random")
    write_imp(tmp_path, "ner", ["fr"], 1, [0.85, 0.84])  # the dense reference for fr when no unmasked fine-tune
    summary = summarize([tmp_path])
    (matrix,) = summary.transfer
    assert matrix.sparsity == 0.5 and matrix.targets == ["ner/en", "ner/fr", "ner/ur"]
    assert matrix.sources == ["ner/en", "ner/fr", "ner/ur", "random"]
    assert matrix.cell("ner/fr", "ner/en").diff_vs_own == pytest.approx(-0.02)
    assert matrix.cell("ner/fr", "ner/en").rel_vs_own == pytest.approx(-0.025)
    assert matrix.cell("ner/fr", "ner/en").diff_vs_dense == pytest.approx(-0.06)
    assert matrix.cell("ner/en", "ner/fr").dense == pytest.approx(0.85)
    assert matrix.dense["ner/fr"].origin == "IMP round 0" and matrix.dense["ner/en"].value == pytest.approx(0.84)
    drop = matrix.mean_relative_drop
    assert drop["ner/en"].mean_relative_drop == pytest.approx((-0.04 / 0.80 + 0.0) / 2)
    assert drop["ner/ur"].mean_relative_drop == pytest.approx(-0.08 / 0.80)
    assert drop["random"].mean_relative_drop == pytest.approx(-0.25)
    (zero,) = summary.zero_shot
    assert "de" in zero.languages
    row = next(r for r in zero.rows if r.source == "ner/fr" and r.trained_on == "en")
    assert row.values["de"] == pytest.approx(0.68)


def test_other_models_and_random_init_are_kept_apart(tmp_path):
    write_finetune(tmp_path, "ner", "en", 0.8, source=("ner", "en"))
    write_finetune(tmp_path, "ner", "en", 0.7, source=("ner", "en"), weight_init="rand")
    write_finetune(tmp_path, "ner", "en", 0.9, source=("ner", "en"), model="bert-base-multilingual-cased")
    matrices = summarize([tmp_path]).transfer
    assert [m.label for m in matrices] == ["ner (bert-base-multilingual-cased)", "ner (mbert-tiny)"]
    assert matrices[1].sources == ["ner/en", "ner/en (random init)"]
    assert matrices[0].cells[0].value == 0.9


def test_runs_are_found_recursively_once_and_errors_are_one_line(tmp_path):
    write_imp(tmp_path / "a" / "b", "ner", ["en"], 1, [0.8, 0.8])
    assert len(summarize([tmp_path, tmp_path / "a"]).inputs.imp) == 1
    with pytest.raises(UserError, match="runs folder not found"):
        summarize([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no imp_results.json"):
        summarize([tmp_path / "empty"])
    bad = tmp_path / "bad" / "finetune_results.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(UserError, match="cannot read"):
        summarize([tmp_path / "bad"])


def test_summarize_results_script_end_to_end(tmp_path, run_script, capsys):
    runs = tmp_path / "runs"
    for seed, dense in ((1, 0.80), (2, 0.81)):
        write_imp(runs, "ner", ["en"], seed, [dense, dense, dense - 0.05], extra_eval={"fr": 0.1})
    write_imp(runs, "ner", ["fr"], 1, [0.85, 0.85, 0.8])
    for source, target, value in (("en", "en", 0.8), ("en", "fr", 0.82), ("fr", "fr", 0.84), ("fr", "en", 0.79)):
        write_finetune(runs, "ner", target, value, source=("ner", source), extra_eval={"es": 0.2})
    out = tmp_path / "out"
    run_script("summarize_results.py", "--runs", str(runs), "--output_dir", str(out))
    printed = capsys.readouterr().out
    assert "IMP winning tickets" in printed and "transfer at 50%" in printed and "zero-shot" in printed
    names = {p.name for p in out.iterdir()}
    assert {"results_summary.json", "imp_curves.csv", "imp_tickets.csv", "transfer.csv", "zero_shot.csv",
            "imp_curves_ner.png", "transfer_ner_50.png", "zero_shot_ner.png"} <= names
    with pytest.raises(SystemExit):
        run_script("summarize_results.py", "--runs", str(runs), "--output_dir", str(out), "--epsilon", "-1")
    assert "--epsilon must be a finite number >= 0, got -1.0" in capsys.readouterr().err


def test_summary_killed_before_its_figures_is_not_complete(tmp_path, run_script, monkeypatch):
    """results_summary.json (what a study checks) comes after every CSV and figure: a run that dies while plotting
    the last figure leaves no summary that looks complete without zero_shot_ner.png."""
    from utils.analysis import plots

    runs = tmp_path / "runs"
    write_imp(runs, "ner", ["en"], 1, [0.8, 0.8, 0.75])
    write_finetune(runs, "ner", "en", 0.8, source=("ner", "en"), extra_eval={"fr": 0.3})
    out = tmp_path / "out"

    def killed(*args, **kwargs):
        raise RuntimeError("killed while plotting")

    with monkeypatch.context() as patch:
        patch.setattr(plots, "heatmap", killed)  # zero_shot_<task>.png, the last figure
        with pytest.raises(RuntimeError, match="killed while plotting"):
            run_script("summarize_results.py", "--runs", str(runs), "--output_dir", str(out))
    assert (out / "imp_curves_ner.png").is_file() and (out / "zero_shot.csv").is_file()
    assert not (out / "results_summary.json").exists()
    run_script("summarize_results.py", "--runs", str(runs), "--output_dir", str(out))
    assert (out / "results_summary.json").is_file() and (out / "zero_shot_ner.png").is_file()


def test_summary_json_reads_back_typed(tmp_path, run_script):
    """results_summary.json keeps its field names (files of earlier versions read) and reads back as the Summary
    that wrote it, including the dense reference's 'from' key."""
    from utils.analysis.summary_writers import read_summary

    runs = tmp_path / "runs"
    write_imp(runs, "ner", ["en"], 1, [0.85, 0.86])  # one seed: epsilon 0, the ticket must not drop
    write_finetune(runs, "ner", "en", 0.8, source=("ner", "en"))
    write_finetune(runs, "ner", "en", 0.9, pruning_type="none")
    summary = run_script("summarize_results.py", "--runs", str(runs), "--output_dir", str(tmp_path / "out"),
                         "--no_plots")
    saved = json.loads((tmp_path / "out" / "results_summary.json").read_text())
    assert list(saved) == ["inputs", "epsilon", "imp", "transfer", "zero_shot", "notes"]
    assert saved["transfer"][0]["dense"] == {"ner/en": {"value": 0.9, "from": "fine-tune without a mask"}}
    assert saved["imp"][0]["winning_ticket"] == {"sparsity": 0.1, "metric": 0.86}
    assert read_summary(tmp_path / "out" / "results_summary.json") == summary


def test_one_formatter_and_writer_for_every_analysis():
    from utils.analysis.writers import csv_text, format_number, format_percent, text_table

    assert (format_number(2 / 3), format_number(2 / 3, 4), format_number(None)) == ("0.667", "0.6667", "-")
    assert (format_percent(0.5), format_percent(0.1234), format_percent(0.0)) == ("50%", "12.3%", "0%")
    assert csv_text(("a", "b", "c"), [[1 / 3, None, "x,y"]]) == 'a,b,c\n0.333333,,"x,y"\n'
    assert text_table(["mask", "f1"], [["ner/en", "0.8000"], ["dense", "-"]]) == (
        "mask        f1\nner/en  0.8000\ndense        -")

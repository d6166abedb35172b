"""labkit.strategy: the table's cells, their records, the findings and the advisor (pure: no training)."""

import pytest

from labkit import records
from labkit import strategy as ST


def cell(task, strategy, quality, seconds=0.0, **kw):
    row = {"task": task, "strategy": strategy, "metric": ST.METRICS[task][0], "quality": quality,
           "train_seconds": seconds, "peak_mib": 10.0, "trainable": 0, "context_tokens": 20.0, "latency_ms": 50.0,
           "update_seconds": None, "fresh_quality": None, "recall_lost": 0.0, "examples": 0}
    return row | kw


def table():
    return [cell("new facts", "zero-shot prompting", 0.04, fresh_quality=0.0),
            cell("new facts", "RAG", 0.95, context_tokens=80.0, latency_ms=300.0, update_seconds=0.001,
                 fresh_quality=1.0, examples=24),
            cell("new facts", "LoRA", 0.80, 10.0, update_seconds=10.0, fresh_quality=0.0, recall_lost=0.4, examples=24),
            cell("new facts", "QLoRA", 0.82, 12.0, update_seconds=12.0, fresh_quality=0.0, recall_lost=0.3,
                 examples=24),
            cell("new facts", "full fine-tuning", 0.97, 9.0, update_seconds=9.0, fresh_quality=0.0, recall_lost=0.6,
                 examples=24),
            cell("output format", "zero-shot prompting", 0.0),
            cell("output format", "few-shot prompting", 0.1, context_tokens=300.0, examples=3),
            cell("output format", "LoRA", 1.0, 10.0, examples=192),
            cell("output format", "QLoRA", 1.0, 12.0, examples=192),
            cell("output format", "full fine-tuning", 1.0, 8.0, examples=192),
            cell("domain style", "zero-shot prompting", 500.0),
            cell("domain style", "full fine-tuning", 20.0, 9.0, examples=100),
            cell("preferences", "zero-shot prompting", -0.2),
            cell("preferences", "full fine-tuning", 0.1, 20.0, examples=192),
            cell("preferences", "SFT + DPO", 0.12, 25.0, examples=192)]


def test_cells_follow_what_applies():
    pairs = ST.cells()
    assert ("new facts", "RAG") in pairs and ("output format", "RAG") not in pairs
    assert ("preferences", "SFT + DPO") in pairs and all(s in ST.STRATEGIES for _, s in pairs)


def test_qlora_cells_only_on_the_jobs_asked_for():
    pairs = ST.cells(qlora=("new facts",))
    assert ("new facts", "QLoRA") in pairs and ("output format", "QLoRA") not in pairs
    assert ("output format", "LoRA") in pairs and len(ST.cells()) - len(pairs) == 3


def test_a_cell_that_does_not_apply_is_refused_in_a_sentence():
    with pytest.raises(ValueError, match="does not apply"):
        ST.check_cell("output format", "RAG")
    with pytest.raises(ValueError, match="Unknown task"):
        ST.check_cell("poetry", "RAG")


def test_perplexity_ranks_lower_first():
    assert ST.better("domain style", 20.0, 500.0) and not ST.better("new facts", 0.2, 0.5)
    assert ST.best(table(), "domain style") == "full fine-tuning"


def test_best_breaks_ties_by_training_time():
    assert ST.best(table(), "output format") == "full fine-tuning"  # 1.0 three times: 8 s is the cheapest


def test_a_re_run_measures_only_the_cells_its_records_lack(tmp_path):
    digest = ST.settings_digest({"steps": 40})
    config = {"profile": "ci", "seed": 0, "settings": digest, "task": "new facts", "strategy": "RAG"}
    records.record_run(tmp_path, "new facts: RAG", config, table()[1], 0.0, 0)
    rows = records.load_runs(tmp_path)
    wanted = [("new facts", "RAG"), ("new facts", "LoRA")]
    assert ST.missing(wanted, rows, "ci", 0, digest) == [("new facts", "LoRA")]
    assert ST.missing(wanted, rows, "ci", 1, digest) == wanted  # another seed: nothing to reuse
    assert ST.missing(wanted, rows, "ci", 0, ST.settings_digest({"steps": 41})) == wanted  # other settings
    assert ST.cells_from_records(rows, "ci", 0, digest) == [table()[1]]


def test_cells_validate_against_their_schema():
    for c in table():
        records.check_results(c, ST.CELL)
    broken = table()[0] | {"quality": "high"}
    with pytest.raises(ValueError, match="'quality' is str"):
        records.check_results(broken, ST.CELL)


def test_the_advisor_picks_the_measured_best_when_nothing_constrains_it():
    t = table()
    for task in ("new facts", "output format", "domain style", "preferences"):
        ranked = ST.advise(t, task, examples=10_000, memory_gib=None)
        assert ranked[0]["strategy"] == ST.best(t, task) and ranked[0]["fits"]


def test_more_memory_never_removes_an_option():
    t = table()
    for task in ("new facts", "output format", "preferences"):
        fitting = None
        for gib in (1, 4, 8, 16, 24, 48, 80, 160):
            now = {r["strategy"] for r in ST.advise(t, task, examples=10_000, memory_gib=gib) if r["fits"]}
            assert fitting is None or fitting <= now, (task, gib, fitting, now)
            fitting = now


def test_memory_rules_full_fine_tuning_of_a_7b_model_out_of_a_16_gib_card():
    ranked = {r["strategy"]: r for r in ST.advise(table(), "new facts", examples=100, memory_gib=16,
                                                  model="Llama-2-7B")}
    assert not ranked["full fine-tuning"]["fits"] and "GiB" in ranked["full fine-tuning"]["why_not"][0]
    assert ranked["QLoRA"]["fits"] and ranked["RAG"]["fits"]
    bigger = {r["strategy"]: r for r in ST.advise(table(), "new facts", examples=100, memory_gib=16,
                                                  model="Llama-2-13B")}
    assert bigger["QLoRA"]["fits"] and not bigger["LoRA"]["fits"] and not bigger["RAG"]["fits"]  # bf16 13B: 24 GiB
    assert "a 4-bit copy needs" in bigger["RAG"]["why_not"][0] and "4-bit" not in bigger["LoRA"]["why_not"][0]


def test_a_freshness_need_favours_rag():
    t = table()
    plain = [r["strategy"] for r in ST.advise(t, "new facts", examples=100)]
    fresh = [r["strategy"] for r in ST.advise(t, "new facts", examples=100, fresh=True)]
    assert plain[0] == "full fine-tuning" and fresh[0] == "RAG"
    assert fresh.index("RAG") <= plain.index("RAG")


def test_too_few_examples_too_little_budget_or_too_slow_rule_a_strategy_out():
    t = table()
    few = {r["strategy"]: r for r in ST.advise(t, "output format", examples=5)}
    assert few["few-shot prompting"]["fits"] and not few["LoRA"]["fits"]
    cheap = {r["strategy"]: r for r in ST.advise(t, "output format", examples=500, budget_s=9)}
    assert cheap["full fine-tuning"]["fits"] and not cheap["QLoRA"]["fits"]
    fast = {r["strategy"]: r for r in ST.advise(t, "new facts", examples=500, latency_ms_limit=100)}
    assert not fast["RAG"]["fits"] and fast["LoRA"]["fits"]
    assert all(not r["fits"] for r in ST.advise(t, "new facts", examples=500, budget_s=1)
               if r["strategy"] in ST.TRAINED)


def test_ruled_out_strategies_come_last_with_their_reason():
    ranked = ST.advise(table(), "output format", examples=5)
    fits = [r["fits"] for r in ranked]
    assert fits == sorted(fits, reverse=True)
    assert "ruled out" in ST.advice_text(ranked) and "192 examples" in ST.advice_text(ranked)


@pytest.mark.parametrize("bad, match", [({"task": "poetry"}, "Unknown task"), ({"examples": -1}, "examples"),
                                        ({"memory_gib": 0}, "memory_gib"), ({"budget_s": "fast"}, "budget_s")])
def test_bad_advisor_input_is_one_sentence(bad, match):
    kwargs = {"task": "new facts", "examples": 10} | bad
    with pytest.raises(ValueError, match=match):
        ST.advise(table(), **kwargs)


def test_findings_of_a_table():
    f = ST.findings(table())
    assert f["best"]["new facts"] == "full fine-tuning"
    assert f["new facts"]["rag_minus_best_tuned"] == pytest.approx(0.95 - 0.97)
    assert f["new facts"]["rag_fresh"] == 1.0 and f["new facts"]["tuned_fresh_max"] == 0.0
    assert f["output format"]["best_prompt"] == "few-shot prompting"
    assert f["output format"]["tuned_minus_prompt"] == pytest.approx(0.9)
    assert f["preferences"]["dpo_minus_sft"] == pytest.approx(0.02)
    assert f["recall_lost"] == {"trained_min": 0.0, "trained_max": 0.6, "untrained_max": 0.0}


def test_few_shot_prefix_writes_each_example_with_its_answer():
    assert ST.few_shot_prefix([("Q : a ? A :", "x"), ("Q : b ? A :", "y")]) == "Q : a ? A : x . Q : b ? A : y . "


def test_the_jobs_to_measure_are_checked():
    assert ST.check_tasks(None) == list(ST.TASKS) and ST.check_tasks("new facts") == ["new facts"]
    with pytest.raises(ValueError, match="Unknown task.*'poetry'"):
        ST.check_tasks(["new facts", "poetry"])


def test_the_advisor_widget_draws_the_ranking_headless(capsys):
    from labkit import widgets

    assert widgets.strategy_advisor(table()) is None  # headless: drawn once with its defaults, no widget
    out = capsys.readouterr().out
    assert out.startswith("1. RAG") or out.startswith("1. full fine-tuning"), out
    assert "full fine-tuning is ruled out: needs" in out  # default: Llama-2-7B on 16 GiB

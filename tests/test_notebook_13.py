"""Notebook 13_choosing_a_strategy, executed by papermill in the ci profile, with its findings asserted.

Every threshold is owned here, with its reason; none is read from the results it judges. Designed on
world seed 0 (the suite's seed); benchmarks/seeds/13_choosing_a_strategy.md has the sweeps of seeds 0-14 and
what they changed.
"""

import pytest
from conftest import NOTEBOOKS, execute, run_notebook

from labkit import records
from labkit import strategy as ST

# RAG must answer the new people's questions better than the best fine-tuned model closed-book: 0.05 is
# 12 of ci's 240 questions (40 people x 6 facts). Seed 0 in ci: 1.00 against 0.25 (full fine-tuning).
RAG_MARGIN = 0.05
# After a change, RAG reads the replaced document: the base model reads one passage at 1.00 (its card),
# so at least 0.8 (5 of ci's 6 changed towns)...
RAG_FRESH_MIN = 0.8
# ...while a fine-tuned model still answers the old town (the new one is always another) or guesses: right
# only by coincidence (a town is 1 of 24), so RAG is ahead by at least half the changed towns (3 of 6).
FRESH_GAP = 0.5
# A change costs RAG a document replaced (milliseconds) and a fine-tuned model a training run (seconds):
# at least 100x apart (seed 0 in ci: ~1 ms against ~40 s on a busy machine).
UPDATE_RATIO = 100
# A format is a training job: the best fine-tuned model's field accuracy at least 0.5 above the best prompt
# (seed 0 in ci: 1.00 against 0.00; the course model does not copy a format from worked examples).
FORMAT_GAP = 0.5
# Preferences: SFT on demonstrations raises the gold reward over the prompted base model by at least 0.1
# (the gold reward is in [-1, 1]; seed 0 in ci: 0.00 against -0.23).
SFT_GAIN = 0.1
# Training forgets: the most any trained cell lost of the base model's recall is at least 0.1 (12 of the
# probe's 120 questions); seed 0 in ci: 1.00 (the format runs).
TRAINED_LOSS_MIN = 0.1

EFFECTS = {
    "new facts: RAG minus the best fine-tuned model": lambda r: r["findings"]["new facts"]["rag_minus_best_tuned"],
    "new facts: RAG after a change": lambda r: r["findings"]["new facts"]["rag_fresh"],
    "new facts: fine-tuned after a change (max)": lambda r: r["findings"]["new facts"]["tuned_fresh_max"],
    "output format: fine-tuned minus prompted": lambda r: r["findings"]["output format"]["tuned_minus_prompt"],
    "preferences: SFT minus prompting": lambda r: r["findings"]["preferences"]["sft_minus_prompting"],
    "preferences: SFT + DPO minus SFT": lambda r: r["findings"]["preferences"]["dpo_minus_sft"],
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook("13_choosing_a_strategy", tmp_path_factory)


@pytest.mark.notebook
def test_13_every_cell_is_measured_and_valid(results):
    wanted = ST.cells(qlora=tuple(results["settings"]["qlora_tasks"]))
    assert [(c["task"], c["strategy"]) for c in results["cells"]] == wanted
    for c in results["cells"]:
        records.check_results(c, ST.CELL)
    assert len(results["measured_now"]) == len(wanted) and results["reused"] == []  # a fresh folder


@pytest.mark.notebook
def test_13_rag_beats_fine_tuning_on_new_facts(results):
    f = results["findings"]["new facts"]
    assert f["rag_minus_best_tuned"] >= RAG_MARGIN, f


@pytest.mark.notebook
def test_13_a_change_reaches_rag_at_once_and_the_fine_tuned_models_not_at_all(results):
    f = results["findings"]["new facts"]
    assert f["rag_fresh"] >= RAG_FRESH_MIN and f["rag_fresh"] - f["tuned_fresh_max"] >= FRESH_GAP, f
    assert f["tuned_update_seconds_min"] >= UPDATE_RATIO * f["rag_update_seconds"], f


@pytest.mark.notebook
def test_13_a_format_is_a_training_job(results):
    f = results["findings"]["output format"]
    assert f["tuned_minus_prompt"] >= FORMAT_GAP, f
    assert f["few_shot_tokens"] > f["tuned_tokens"], f  # and the examples cost prompt tokens


@pytest.mark.notebook
@pytest.mark.xfail(strict=False, raises=AssertionError, reason=(
    "Held on 14 of 15 seeds (0-14, at 80 SFT steps; +0.13 to +0.55) and failed on seed 14, one of the seeds kept "
    "back to confirm (-0.09): on 24 held-out questions the gold reward moves by 0.1 from seed to seed. At 40 SFT "
    "steps it had held on 5 of seeds 1-10. The notebook prints the numbers and claims no more."))
def test_13_sft_beats_prompting_on_preferences(results):
    f = results["findings"]["preferences"]
    assert f["sft_minus_prompting"] >= SFT_GAIN, f


@pytest.mark.notebook
def test_13_only_training_forgets(results):
    r = results["findings"]["recall_lost"]
    assert r["untrained_max"] == 0 and r["trained_max"] >= TRAINED_LOSS_MIN, r


@pytest.mark.notebook
def test_13_the_advisor_on_the_measured_table(results):
    table = results["cells"]
    for task in ST.TASKS:
        ranked = ST.advise(table, task, examples=10**6)
        assert ranked[0]["strategy"] == results["best"][task] == ST.best(table, task), (task, ranked[0])
    assert ST.advise(table, "new facts", examples=10**6, fresh=True)[0]["strategy"] == "RAG"
    for task in ST.TASKS:
        before = set()
        for gib in (2, 8, 16, 40, 80):
            now = {r["strategy"] for r in ST.advise(table, task, examples=10**6, memory_gib=gib) if r["fits"]}
            assert before <= now, (task, gib)
            before = now


@pytest.mark.notebook
def test_13_a_second_run_reads_its_cells_back(tmp_path):
    path = NOTEBOOKS / "13_choosing_a_strategy.ipynb"
    quick = {"tasks": ["new facts"], "steps": 3}
    first = execute(path, tmp_path, quick)
    second = execute(path, tmp_path, quick)
    assert len(first["measured_now"]) == len(ST.APPLIES["new facts"]) and first["reused"] == []
    assert second["measured_now"] == [] and second["reused"] == first["measured_now"]
    assert second["cells"] == first["cells"]

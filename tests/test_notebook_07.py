"""Notebook 07_instruction_tuning, executed by papermill in the ci profile, with its findings asserted.

Every threshold is owned here, with its reason; none is read from the results it judges. The design
looked at world seeds 0 and 1 (an early prototype and the first notebook run, ci settings); the seed
sweep then judged seeds 1-10 (benchmarks/seeds/07_instruction_tuning.md). Where a designed bound did
not hold on every seed, the comment says so and the test asserts what held instead, or is marked as a
finding that does not hold.
"""

import math

import pytest
from conftest import run_notebook

# The tuned model sees end-of-text in the loss after every answer. Designed as "tuned >= 0.9, base zero-shot
# <= 0.5" (seeds 0, 1: 1.00 against 0.11-0.24); seed 5 of the sweep stopped 0.83 of its tuned answers. What held
# on seeds 1-10 is the gain: tuned minus zero-shot 0.63-0.83. It is asserted at 0.5 (the base model still stops
# on at most half, so a run that learned nothing about stopping cannot pass).
MIN_STOP_GAIN = 0.5
MAX_BASE_STOPPED = 0.5
# Seen kinds: tuned minus zero-shot measured +0.08 to +0.13 (seeds 0, 1). With 8 test examples per kind, a
# kind's mean moves by 0.12 per answer; over six kinds, 0.05 is about two answers' worth. Held on 9 of seeds
# 1-10 (seed 2: -0.004; mean +0.16); the notebook and the README say so.
MIN_SEEN_GAIN = 0.05
# Held-out kinds: 0.00 zero-shot and tuned on seeds 0, 1 (the tuned model answers a yes/no question with a
# name). "Does not carry over": the tuned model gains at most 0.1 there (a tenth of the scale). Held on 1-10.
MAX_HELDOUT_GAIN = 0.1
# Summaries: designed as recall +0.2 over zero-shot with precision >= 0.9 (seeds 0, 1: +0.37 to +0.41, 1.00).
# It held on 6 of seeds 1-10 (recall gain -0.31 to +0.56): at 8 summaries per run it is not a finding.
MIN_SUMMARY_RECALL_GAIN = 0.2
MIN_SUMMARY_PRECISION = 0.9
# Whole-sequence loss puts end-of-text in a loss that is mostly passages: designed as "stops at least 0.1 less
# often" (seeds 0, 1: 0.15-0.26 less); seed 5 of the sweep: 0.06 less. What held on seeds 1-10: less often
# (0.06-0.44), asserted as at least one answer fewer.
MIN_FEWER_STOPPED = 1


# Effect sizes the seed sweep (benchmarks/seeds.py) reports over seeds, beside which findings held.
EFFECTS = {
    "tuned minus zero-shot, seen kinds": lambda r: r["tuned"]["scores"]["seen"] - r["zero"]["scores"]["seen"],
    "few-shot minus zero-shot, seen kinds": lambda r: r["few"]["scores"]["seen"] - r["zero"]["scores"]["seen"],
    "tuned minus zero-shot, held-out kinds": lambda r: (r["tuned"]["scores"]["heldout"]
                                                        - r["zero"]["scores"]["heldout"]),
    "stopped, tuned minus zero-shot": lambda r: r["tuned"]["stopped"] - r["zero"]["stopped"],
    "whole-sequence minus assistant-only, seen kinds": lambda r: (r["whole"]["scores"]["seen"]
                                                                  - r["tuned"]["scores"]["seen"]),
    "whole-sequence minus assistant-only, stopped": lambda r: r["whole"]["stopped"] - r["tuned"]["stopped"],
    "learning curve, largest minus smallest set": lambda r: r["curve"][-1]["seen"] - r["curve"][0]["seen"],
    "clean minus sloppy, seen kinds": lambda r: r["quality"]["gain"],
    "summary recall, tuned minus zero-shot": lambda r: (r["summaries"]["tuned"]["recall"]
                                                        - r["summaries"]["zero-shot"]["recall"]),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook("07_instruction_tuning", tmp_path_factory)


@pytest.mark.notebook
def test_07_the_silent_failures_are_refused(results):
    silent = results["silent_failures"]
    assert not silent["masked_loss_is_a_number"]  # the loss over zero tokens: nan, not an error
    assert "Every label is masked" in silent["every_label_masked"]
    assert "never learn to stop" in silent["eos_masked_as_padding"]
    assert silent["unmarked_labels_in_loss"] == 0
    assert "generation" in silent["template_without_markers"]


@pytest.mark.notebook
def test_07_assistant_only_loss_trains_the_answers_and_their_end(results):
    template = results["template"]
    assert template["has_generation_markers"]
    assert 0 < template["tokens_in_loss"] < template["tokens"]
    for run in (results["tuned"], *[results[k] for k in ("whole",)]):
        assert run["eos_trained"] == 1.0 and run["last_loss"] < run["first_loss"]
    assert results["tuned"]["trained_share"] < 0.5 < results["whole"]["trained_share"]


@pytest.mark.notebook
def test_07_tuning_teaches_the_model_to_stop(results):
    assert results["zero"]["stopped"] <= MAX_BASE_STOPPED, results["zero"]["stopped"]
    gain = results["tuned"]["stopped"] - results["zero"]["stopped"]
    assert gain >= MIN_STOP_GAIN, gain


@pytest.mark.notebook
def test_07_tuning_beats_zero_shot_on_the_seen_kinds(results):
    gain = results["tuned"]["scores"]["seen"] - results["zero"]["scores"]["seen"]
    assert gain >= MIN_SEEN_GAIN, gain


@pytest.mark.notebook
def test_07_tuning_does_not_carry_over_to_held_out_kinds(results):
    gain = results["tuned"]["scores"]["heldout"] - results["zero"]["scores"]["heldout"]
    assert gain <= MAX_HELDOUT_GAIN, gain


@pytest.mark.notebook
@pytest.mark.xfail(reason="held on 6 of seeds 1-10 (failed on 2, 5, 6, 7): eight summaries per run are too few")
def test_07_tuned_summaries_write_the_facts_without_inventing(results):
    tuned, zero = results["summaries"]["tuned"], results["summaries"]["zero-shot"]
    assert tuned["recall"] - zero["recall"] >= MIN_SUMMARY_RECALL_GAIN, (tuned, zero)
    assert tuned["precision"] >= MIN_SUMMARY_PRECISION, tuned


@pytest.mark.notebook
def test_07_whole_sequence_loss_stops_less_often(results):
    answers = results["sizes"]["test"] + results["sizes"]["heldout"]
    fewer = round((results["tuned"]["stopped"] - results["whole"]["stopped"]) * answers)
    assert fewer >= MIN_FEWER_STOPPED, fewer


@pytest.mark.notebook
def test_07_every_run_is_recorded_and_finite(results):
    sizes = [row["n"] for row in results["curve"]]
    assert sizes == sorted(sizes) and sizes[-1] == results["sizes"]["train"]
    for row in results["curve"]:
        assert row["epochs"] == pytest.approx(results["curve"][-1]["epochs"] * sizes[-1] / row["n"])
    assert 0 < results["quality"]["wrong_share"] < 1
    for name in ("zero", "few", "tuned", "whole"):
        assert all(math.isfinite(v) and 0 <= v <= 1 for v in results[name]["scores"].values()), name

"""Notebook 07_instruction_tuning, executed by papermill in the ci profile, with its findings asserted.

Every threshold is owned here, with its reason; none is read from the results it judges. The design
looked at world seeds 0 and 1 only (an early prototype and the first notebook run, ci settings); seeds
2-10 were judged by these thresholds in the seed sweep without changing them (benchmarks/seeds/).
"""

import math

import pytest
from conftest import run_notebook

# The tuned model sees end-of-text in the loss after every answer: measured 1.00 of the answers stopped
# (seeds 0, 1), against 0.11-0.24 for the base model zero-shot. 0.9 and 0.5 leave room on both sides.
MIN_TUNED_STOPPED = 0.9
MAX_BASE_STOPPED = 0.5
# Seen kinds: tuned minus zero-shot measured +0.08 to +0.13 (seeds 0, 1). With 8 test examples per kind, a
# kind's mean moves by 0.12 per answer; over six kinds, 0.05 is about two answers' worth.
MIN_SEEN_GAIN = 0.05
# Held-out kinds: 0.00 zero-shot and tuned on seeds 0, 1 (the tuned model answers a yes/no question with a
# name). "Does not carry over": the tuned model gains at most 0.1 there (a tenth of the scale).
MAX_HELDOUT_GAIN = 0.1
# Summaries: the tuned model writes the reference's two facts far more often (recall +0.37 to +0.41 on seeds 0,
# 1) and invents none it was not told; 0.2 is half the measured gain.
MIN_SUMMARY_RECALL_GAIN = 0.2
# ...and every fact it writes is one the passage gives (precision 1.00 on seed 0); 0.9 allows one slip in ten.
MIN_SUMMARY_PRECISION = 0.9
# Whole-sequence loss puts end-of-text in a loss that is mostly passages: its answers stopped 0.74-0.85 against
# 1.00 with assistant-only loss (seeds 0, 1). 0.1 is under the smallest measured gap (0.15).
MIN_STOP_GAP_WHOLE = 0.1


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
    assert results["tuned"]["stopped"] >= MIN_TUNED_STOPPED, results["tuned"]["stopped"]
    assert results["zero"]["stopped"] <= MAX_BASE_STOPPED, results["zero"]["stopped"]


@pytest.mark.notebook
def test_07_tuning_beats_zero_shot_on_the_seen_kinds(results):
    gain = results["tuned"]["scores"]["seen"] - results["zero"]["scores"]["seen"]
    assert gain >= MIN_SEEN_GAIN, gain


@pytest.mark.notebook
def test_07_tuning_does_not_carry_over_to_held_out_kinds(results):
    gain = results["tuned"]["scores"]["heldout"] - results["zero"]["scores"]["heldout"]
    assert gain <= MAX_HELDOUT_GAIN, gain


@pytest.mark.notebook
def test_07_tuned_summaries_write_the_facts_without_inventing(results):
    tuned, zero = results["summaries"]["tuned"], results["summaries"]["zero-shot"]
    assert tuned["recall"] - zero["recall"] >= MIN_SUMMARY_RECALL_GAIN, (tuned, zero)
    assert tuned["precision"] >= MIN_SUMMARY_PRECISION, tuned


@pytest.mark.notebook
def test_07_whole_sequence_loss_stops_less_often(results):
    gap = results["tuned"]["stopped"] - results["whole"]["stopped"]
    assert gap >= MIN_STOP_GAP_WHOLE, gap


@pytest.mark.notebook
def test_07_every_run_is_recorded_and_finite(results):
    sizes = [row["n"] for row in results["curve"]]
    assert sizes == sorted(sizes) and sizes[-1] == results["sizes"]["train"]
    for row in results["curve"]:
        assert row["epochs"] == pytest.approx(results["curve"][-1]["epochs"] * sizes[-1] / row["n"])
    assert 0 < results["quality"]["wrong_share"] < 1
    for name in ("zero", "few", "tuned", "whole"):
        assert all(math.isfinite(v) and 0 <= v <= 1 for v in results[name]["scores"].values()), name

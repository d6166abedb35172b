"""Notebook 06_peft_family, executed by papermill in the ci profile, with its findings asserted.

Every threshold is owned here, with its reason; none is read from the results it judges.
"""

import pytest
from conftest import run_notebook

from labkit import settings

# The bottleneck adapter's up-projection starts at zero, so the adapted model is the base model's
# function (the bar: equal outputs within 1e-6); a non-zero start or a residual lost shows far above.
IDENTITY_TOLERANCE = 1e-6
# The base model has never written a record (measured 0.00-0.01 field accuracy): full fine-tuning at its kept
# rate should learn the format almost entirely in ci's 30 steps (measured 0.96-0.99 on seeds 1-6).
MIN_FULL_TEST = 0.9
# LoRA reaches full fine-tuning's score with a few percent of the parameters (LoRA minus full measured
# -0.02 to +0.02 on seeds 1-6); the notebook's own reach tolerance is 0.05, the same margin here.
LORA_REACH = 0.05
# Prompt tuning learns slowest: with ci's 30 steps both initialisations stay near the base model
# (at most 0.09 on seeds 1-6) while LoRA is at 0.96 or more. A gap of 0.5 holds unless prompt tuning learns
# the task.
PROMPT_BELOW_LORA = 0.5
# Forgetting, two ways. LoRA learned the record format so well that it answers plain questions in it: its
# exact recall collapses (measured 1.00 lost on seeds 1-6), yet the answers still start with the right value
# (facts lost 0.00-0.01 on seeds 1-6): a take-over of the format, not lost knowledge. 0.5 and 0.1 leave room on
# both sides; 0.1 is also the notebook's own split.
MIN_LORA_RECALL_LOST = 0.5
MAX_FACTS_LOST_KEPT = 0.1
# Prefix tuning with its projection puts learned keys and values in front of every prompt: it loses facts
# themselves. Designed on seeds 1-3 as "loses at least 0.3" (measured 0.54-0.84); the confirmation seeds 4-6
# measured 0.57, 0.23 and 0.79, so that bound did not hold on every seed. What held on all six: it loses more
# than LoRA (0.00-0.01) by more than the notebook's 0.1 split.
PREFIX_FACTS_GAP = 0.1
# Merging LoRA into the weights computes the same function up to float rounding (the bar: 1e-4).
MERGE_TOLERANCE = 1e-4


# Effect sizes the seed sweep (benchmarks/seeds.py) reports over seeds, beside which findings held.
EFFECTS = {
    "LoRA minus full fine-tuning (test)": lambda r: r["chosen"]["LoRA"]["test"] - r["chosen"]["full"]["test"],
    "best prompt tuning (test)": lambda r: max(r["chosen"][m]["test"]
                                               for m in ("prompt, vocabulary init", "prompt, random init")),
    "LoRA exact recall lost": lambda r: (r["base"]["capabilities"]["qa_recall"]
                                         - r["chosen"]["LoRA"]["after"]["qa_recall"]),
    "LoRA facts lost": lambda r: (r["base"]["capabilities"]["facts_kept"]
                                  - r["chosen"]["LoRA"]["after"]["facts_kept"]),
    "prefix + projection facts lost": lambda r: (r["base"]["capabilities"]["facts_kept"]
                                                 - r["chosen"]["prefix + projection"]["after"]["facts_kept"]),
    "LoRA memory share / parameter share": lambda r: (r["memory"]["LoRA"]["memory_share"]
                                                      / r["memory"]["LoRA"]["parameter_share"]),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook("06_peft_family", tmp_path_factory)


@pytest.mark.notebook
def test_06_every_method_ran_at_every_rate(results):
    rates = settings.get_profile(results["profile"]).peft.rates
    assert results["methods"] == list(settings.PEFT_METHODS)
    assert sorted((r["method"], r["lr"]) for r in results["runs"]) == sorted((m, lr) for m in rates for lr in rates[m])
    assert set(results["chosen"]) == set(settings.PEFT_METHODS)


@pytest.mark.notebook
def test_06_no_method_silently_trains_nothing_or_is_ignored_at_generation(results):
    for row in results["runs"]:
        assert row["moved"] > 0, f"{row['method']} at lr {row['lr']}: its trainable parameters never changed"
        assert row["differs_from_base"] > 0, f"{row['method']} at lr {row['lr']}: generation ignored the adapter"


@pytest.mark.notebook
def test_06_the_handwritten_adapter_starts_as_the_identity(results):
    assert results["adapter_identity_gap"] <= IDENTITY_TOLERANCE


@pytest.mark.notebook
def test_06_the_kept_rate_is_the_best_on_validation(results):
    for method, row in results["chosen"].items():
        tried = [r["val"] for r in results["runs"] if r["method"] == method]
        assert row["val"] == max(tried), method


@pytest.mark.notebook
def test_06_lora_reaches_full_finetuning_with_a_small_share(results):
    chosen, total = results["chosen"], results["base"]["parameters"]
    assert results["base"]["test"]["field_accuracy"] < 0.1  # the task is new to the base model
    assert chosen["full"]["test"] >= MIN_FULL_TEST, chosen["full"]["test"]
    assert chosen["LoRA"]["test"] >= chosen["full"]["test"] - LORA_REACH, (chosen["LoRA"]["test"],
                                                                           chosen["full"]["test"])
    assert "LoRA" in results["reach_full"] and results["reach_full"]["LoRA"] == chosen["LoRA"]["trainable"] / total
    assert chosen["LoRA"]["trainable"] < 0.1 * total


@pytest.mark.notebook
def test_06_prompt_tuning_learns_slowest(results):
    chosen = results["chosen"]
    for m in ("prompt, vocabulary init", "prompt, random init"):
        assert chosen[m]["test"] <= chosen["LoRA"]["test"] - PROMPT_BELOW_LORA, (m, chosen[m]["test"])
    init = results["prompt_init"]
    assert init["gain"] == pytest.approx(init["vocabulary"] - init["random"])


@pytest.mark.notebook
def test_06_memory_shrinks_far_less_than_the_parameter_share(results):
    """Every PEFT method keeps the frozen weights and the activations: its training memory share is
    several times its parameter share (the issue's finding), and frozen weights plus activations are
    most of it."""
    for method, saved in results["memory"].items():
        if method == "full":
            continue
        assert saved["memory_share"] >= 3 * saved["parameter_share"], (method, saved)
        assert saved["frozen_and_activations"] > 0.5, (method, saved)


@pytest.mark.notebook
def test_06_one_base_model_serves_two_adapters(results):
    serving = results["serving"]
    assert serving["same_as_alone"]
    assert serving["adapters_differ"] >= 1
    assert serving["merge_gap"] <= MERGE_TOLERANCE


@pytest.mark.notebook
def test_06_lora_keeps_the_facts_it_stops_saying_in_the_old_format(results):
    before = results["base"]["capabilities"]
    lora, full = results["chosen"]["LoRA"]["after"], results["chosen"]["full"]["after"]
    assert before["qa_recall"] - lora["qa_recall"] >= MIN_LORA_RECALL_LOST, (before, lora)
    for after in (lora, full):
        assert before["facts_kept"] - after["facts_kept"] <= MAX_FACTS_LOST_KEPT, (before, after)
    assert {"LoRA", "full"} <= set(results["facts_split"]["kept"])


@pytest.mark.notebook
def test_06_prefix_tuning_loses_facts(results):
    prefix = results["chosen"]["prefix + projection"]["after"]
    lora = results["chosen"]["LoRA"]["after"]
    assert lora["facts_kept"] - prefix["facts_kept"] >= PREFIX_FACTS_GAP, (lora, prefix)
    assert "prefix + projection" in results["facts_split"]["lost"]

"""Notebook 11_data_quality_and_bias, executed by papermill in the ci profile, with its findings asserted.

Every threshold is owned here, with its reason; none is read from the results it judges. The design looked at
seed 0 (a prototype of each part, then the notebook, ci settings); the seed sweep then ran seeds 1-10
(benchmarks/seeds/11_data_quality_and_bias.md). Where a designed bound did not hold on a seed, the comment says
so and the test is marked as a finding that does not hold, with its history; a bound added after the sweep says
so and was confirmed on seeds 11-14, which no design step had looked at. Sixty test people
for the entities (one entity moves an F1 by about 0.005); 75 open prompts of the learned sector (one prompt moves
a rate by 0.013).
"""

import math

import pytest
from conftest import run_notebook

# Label noise, entities, 40 steps. Half the training entities mislabelled (a wrong type or none): seed 0 lost 0.37
# entity F1 with full fine-tuning (0.77 -> 0.40) and 0.44 with LoRA (0.81 -> 0.37). The right label is still the
# commonest for each entity, but "O" is the commonest label of all words, so the noise pulls the head towards
# missing entities. Asserted: each method loses at least 0.2.
MIN_COST_AT_HALF = 0.2
# A quarter mislabelled cost 0.03 (full) and 0.08 (LoRA) on seed 0: the right label is still three times as common
# as any wrong one and is learned first. Designed as "at most 0.15, well under the noise's share"; seed 1 of the
# sweep measured 0.14 (full) and 0.151 (LoRA): marked as a finding that does not hold at ci's size.
MAX_COST_AT_QUARTER = 0.15
# Early stopping on clean validation at the noisiest share: seed 0 kept the last step (40 of 40; F1 -0.01 against
# the last step): at ci's budget the run had not started memorising the noise. Designed as "within 0.05 of the last
# step's F1" (nothing to undo); seed 1 of the sweep kept step 30 and scored +0.18 (0.59 against 0.42): there the
# validation loss had already turned, and early stopping rescued the run. Marked as a finding that does not hold;
# whether a 40-step run has begun to memorise depends on the seed.
MAX_EARLY_STOPPING_GAIN = 0.05
# The slice without organisations: the head never sees an ORGANISATION label, so it never predicts one (F1 0 is
# structural: at most 0.05 allows one stray hit). Trained on all data, organisations scored well above that;
# designed as at least 0.2 more. The overall F1 hides it: within 0.1 of the full data's run either way (seed 0:
# 0.80 on the slice against 0.77: the slice's 66 examples are seen ten times each in 40 steps).
MAX_UNSEEN_TYPE_F1 = 0.05
MIN_SEEN_TYPE_OVER_UNSEEN = 0.2
MAX_OVERALL_HIDES = 0.1
# Bias amplification, the causal LM, 40 steps of 16 biographies. Seed 0, expected rate (the probability of "her",
# what sampling writes) against the data rate: 0.33 at 0.25, 0.41 at 0.55, 0.56 at 0.86: it rises with the skew,
# but below it (-0.31 at the highest ratio: 40 steps move the model only part of the way). Asserted: from the
# lowest to the highest ratio it rises by at least 0.1, and at the highest it stays below the data rate.
# Sweep, seeds 1-10: below the data rate on all ten (-0.34 to -0.50); the rise was positive on all ten but at
# least 0.1 on only four (0.002 to 0.17, mean 0.07): the rise is marked as a finding that does not hold at ci's
# 40 steps, and the two halves are separate tests.
MIN_EXPECTED_RATE_RISE = 0.1
# Greedy decoding: on seed 0 every fine-tuned model gave one pronoun to every prompt (she for all, or for none),
# the learned sector and the others alike: it learned a lean towards one pronoun, not the pronoun-sector pair, and
# greedy decoding turned the lean into a rule, so its "amplification" is +-(data rate) or +(1 - data rate).
# Asserted: the learned sector's greedy rate is within 0.1 of the other sectors' for every fine-tuned run.
MAX_TARGET_OVER_CONTROL = 0.1
# Counterfactual augmentation at the highest ratio: seed 0's expected rate 0.25 against 0.56 for the skewed data it
# came from (rebalancing: 0.49). Designed: at least 0.1 lower than the skewed run's. Sweep, seeds 1-10: held on
# seven (lower by 0.06 to 0.25; seed 3 +0.002): marked as a finding that does not hold on every seed.
MIN_CDA_REDUCTION = 0.1
# Rebalancing, added after the sweep of seeds 1-10 (lower than the skewed run on all ten, by 0.077 to 0.20), then
# confirmed on seeds 11-14: its data rate is the world's third against the skewed run's 0.86, so a model that
# follows its data at all ends lower. Asserted: lower, by any margin (the direction, not a size).
MIN_REBALANCE_REDUCTION = 0.0


def noise_row(results, method, share):
    return next(r for r in results["noise"] if r["method"] == method and r["noise"] == share)


def shares(results):
    return sorted({r["noise"] for r in results["noise"]})


def methods(results):
    return [m for m in dict.fromkeys(r["method"] for r in results["noise"]) if "early" not in m]


def bias(results, name):
    return next(r for r in results["bias"] if r["name"] == name)


def skewed(results):
    return sorted((r for r in results["bias"] if r["name"].startswith("skewed")), key=lambda r: r["data_rate"])


def cost(results, method, share):
    return noise_row(results, method, 0.0)["entity_f1"] - noise_row(results, method, share)["entity_f1"]


def early(results):
    return next(r for r in results["noise"] if "early" in r["method"] or "early" in r["name"])


# Effect sizes the seed sweep (benchmarks/seeds.py) reports over seeds, beside which findings held.
EFFECTS = {
    "full fine-tuning, F1 lost to the noisiest labels": lambda r: cost(r, "full", shares(r)[-1]),
    "LoRA, F1 lost to the noisiest labels": lambda r: cost(r, methods(r)[1], shares(r)[-1]),
    "full fine-tuning, F1 lost to the middle share of wrong labels": lambda r: cost(r, "full", shares(r)[1]),
    "LoRA minus full fine-tuning, clean labels": lambda r: (noise_row(r, methods(r)[1], 0.0)["entity_f1"]
                                                            - noise_row(r, "full", 0.0)["entity_f1"]),
    "early stopping minus last step, noisiest labels": lambda r: (early(r)["entity_f1"]
                                                                  - noise_row(r, "full", shares(r)[-1])["entity_f1"]),
    "early stopping, step kept": lambda r: early(r)["kept_step"],
    "organisation F1, all data minus slice": lambda r: (r["slice"]["all_types"]["ORGANISATION"]
                                                        - r["slice"]["slice_types"]["ORGANISATION"]),
    "overall F1, slice minus all data": lambda r: r["slice"]["slice_f1"] - r["slice"]["all_f1"],
    "expected rate, highest minus lowest ratio": lambda r: (skewed(r)[-1]["expected_rate"]
                                                            - skewed(r)[0]["expected_rate"]),
    "expected amplification at the highest ratio": lambda r: skewed(r)[-1]["expected_amplification"],
    "greedy amplification at the highest ratio": lambda r: skewed(r)[-1]["amplification"],
    "counterfactual minus skewed, expected rate": lambda r: (bias(r, "counterfactual augmentation")["expected_rate"]
                                                            - skewed(r)[-1]["expected_rate"]),
    "rebalanced minus skewed, expected rate": lambda r: (bias(r, "rebalanced")["expected_rate"]
                                                        - skewed(r)[-1]["expected_rate"]),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook("11_data_quality_and_bias", tmp_path_factory)


@pytest.mark.notebook
def test_11_half_the_labels_wrong_costs_both_methods(results):
    for method in methods(results):
        assert cost(results, method, shares(results)[-1]) >= MIN_COST_AT_HALF, method


@pytest.mark.notebook
@pytest.mark.xfail(reason="held on seed 0 (full 0.03, LoRA 0.08); seed 1: LoRA lost 0.151 (full 0.14)", strict=False)
def test_11_a_quarter_wrong_costs_little(results):
    middle = shares(results)[1]
    assert 0.2 <= middle <= 0.3, middle  # the ci profile's curve: 0, 0.25, 0.5
    for method in methods(results):
        assert cost(results, method, middle) <= MAX_COST_AT_QUARTER, method


@pytest.mark.notebook
@pytest.mark.xfail(reason="held on seed 0 (kept step 40, -0.01); seed 1 kept step 30 and rescued +0.18", strict=False)
def test_11_early_stopping_has_nothing_to_undo_at_ci_budget(results):
    e = early(results)
    assert 0 < e["kept_step"] <= e["steps"]
    gain = e["entity_f1"] - noise_row(results, "full", shares(results)[-1])["entity_f1"]
    assert abs(gain) <= MAX_EARLY_STOPPING_GAIN, gain


@pytest.mark.notebook
def test_11_a_slice_misses_what_it_never_showed_and_the_overall_score_hides_it(results):
    s = results["slice"]
    assert s["slice_types"]["ORGANISATION"] <= MAX_UNSEEN_TYPE_F1, s["slice_types"]
    assert s["all_types"]["ORGANISATION"] - s["slice_types"]["ORGANISATION"] >= MIN_SEEN_TYPE_OVER_UNSEEN, s
    assert abs(s["slice_f1"] - s["all_f1"]) <= MAX_OVERALL_HIDES, s
    assert results["sizes"]["slice"] < results["sizes"]["train"]


@pytest.mark.notebook
def test_11_the_expected_rate_stays_below_the_data_rate(results):
    runs = skewed(results)
    assert runs[-1]["expected_amplification"] < 0, runs[-1]


@pytest.mark.notebook
@pytest.mark.xfail(reason="seeds 1-14: at least 0.1 on six (-0.002 to 0.32)", strict=False)
def test_11_the_expected_rate_rises_with_the_skew(results):
    runs = skewed(results)
    assert runs[-1]["expected_rate"] - runs[0]["expected_rate"] >= MIN_EXPECTED_RATE_RISE, runs


@pytest.mark.notebook
def test_11_greedy_decoding_learned_a_lean_not_the_pair(results):
    for r in results["bias"][1:]:
        assert abs(r["greedy_rate"] - r["other_sectors_greedy_rate"]) <= MAX_TARGET_OVER_CONTROL, r


@pytest.mark.notebook
@pytest.mark.xfail(reason="seeds 1-14: held on eleven (0.06 to 0.33 lower; seed 3 +0.002)", strict=False)
def test_11_counterfactual_augmentation_lowers_the_rate(results):
    drop = skewed(results)[-1]["expected_rate"] - bias(results, "counterfactual augmentation")["expected_rate"]
    assert drop >= MIN_CDA_REDUCTION, drop


@pytest.mark.notebook
def test_11_rebalancing_lowers_the_rate(results):
    drop = skewed(results)[-1]["expected_rate"] - bias(results, "rebalanced")["expected_rate"]
    assert drop > MIN_REBALANCE_REDUCTION, drop


@pytest.mark.notebook
def test_11_every_run_is_recorded_and_finite(results):
    assert shares(results)[0] == 0.0 and len(methods(results)) == 2
    for r in results["noise"]:
        assert all(math.isfinite(r[k]) and 0 <= r[k] <= 1 for k in ("entity_f1", "word_accuracy")), r
        assert r["steps"] > 0 and 0 < r["kept_step"] <= r["steps"]
    # the data rates are the skew asked for (the realised share of a few hundred draws), the mitigations a third
    runs = skewed(results)
    assert [r["data_rate"] for r in runs] == sorted(r["data_rate"] for r in runs)
    assert runs[-1]["data_rate"] > 0.75 and runs[0]["data_rate"] < 0.45
    for name in ("rebalanced", "counterfactual augmentation"):
        assert abs(bias(results, name)["data_rate"] - 1 / 3) < 0.02, name
    before = bias(results, "before fine-tuning")
    assert before["steps"] == 0 and before["amplification"] is None
    assert results["sizes"]["prompts"] == 300 and abs(results["sizes"]["truth_ratio"] - 1 / 3) < 0.05

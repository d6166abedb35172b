"""Notebook 10_domain_adaptation, executed by papermill in the ci profile, with its findings asserted.

Every threshold is owned here, with its reason; none is read from the results it judges. The design
looked at herbal (``seed``) 0 (the notebook's own run), 1 (a prototype) and, after the sweep's first runs, 1
and 2 again (see below), ci settings; the seed sweep then judged seeds 1-10 (benchmarks/seeds/10_domain_adaptation.md).
Where a designed bound did not hold on every seed, the comment says so and the test asserts what held
instead, or is marked as a finding that does not hold. Sixty-four unseen questions (16 herbs, 4 facts
each): one answer moves an accuracy by 0.016.
"""

import math

import pytest
from conftest import run_notebook

from labkit.topics.domain_adaptation import gain

# The tokenizer is structural: every jargon word becomes one token (6.53 tokens before), an herbal entry about
# half as long (64 -> 32 tokens), every text decodes back exactly. Asserted: at most three quarters as long.
MAX_ENTRY_RATIO = 0.75
# Training speed follows the tokens: a step of continued pretraining with the extended tokenizer took 0.45 of the
# original's time on seed 0 and 0.44-0.57 on seeds 1-10, but a benchmark run whose machine got busier halfway
# measured 0.96 (the runs are timed one after the other): a wall-clock ratio is reported as an effect, not asserted.
# What is asserted is the cause: an entry in about half the tokens (above).
# Mean initialisation starts the invented herb names alike, because they share syllables: mean cosine similarity
# +0.91 against -0.00 for random rows (seed 0; the herb names are the same on every seed). Asserted: 0.3 apart.
MIN_MEAN_OVER_RANDOM_SIMILARITY = 0.3
# A model that never read the herbal cannot know an unseen herb's facts: the base model answers none (0.00),
# tuned on the task alone it stays near the majority answer or below (seed 0: 0.08, 0.00, 0.03 at 16, 48, 96
# questions against a majority of 0.09; seed 1: 0.06 against 0.23). Asserted: at most the majority + 0.1 at every
# size (six answers of 64 above it).
MAX_TASK_ONLY_OVER_MAJORITY = 0.1
# One run of continued pretraining and tuning is noisy: on herbal 1 the mean-init run reached 0.14 and the
# random-init run 0.52; on herbal 2, 0.44 and 0.27 (the same settings). The findings are asserted on the mean of
# the two extended starts (``DA.gain``), as the notebook states them; each start's own number is an effect below.
# The design looked at herbals 0, 1 and 2 (the sweep's first two seeds, so those are not independent checks).
# Continued pretraining (extended tokenizer) then the task, all 96 questions, against the task alone: +0.47,
# +0.30, +0.32 on herbals 0-2. Designed as "at least +0.2"; herbal 8 of the sweep measured +0.17 (its two extended
# runs fell back between 48 and 96 questions). What held on seeds 1-10: +0.17 to +0.49. Asserted: at least +0.1
# (six answers of 64; a run that learned nothing from the herbal sits near 0).
MIN_DAPT_OVER_TASK_ONLY = 0.1
# The extended tokenizer against the original one, the same continued pretraining and task: +0.30, +0.14, +0.23
# on herbals 0-2. Designed as "at least +0.1"; herbal 8 measured +0.02 (one answer). What held on seeds 1-10 is
# the direction (+0.02 to +0.41): asserted as "the extended tokenizer ends ahead".
MIN_EXTENDED_OVER_ORIGINAL = 0.0
# The payoff with few labels (16 questions, 4 herbs): +0.18, +0.09, +0.22 over the task alone on herbals 0-2,
# smaller than with all 96 on each. Asserted: at least +0.03 (two answers of 64). Held on seeds 1-10: +0.05 to +0.27.
MIN_SMALL_SET_PAYOFF = 0.03
# The herbal alone at ci's learning rate (3e-3, 250 steps) wipes out what the model knew: question recall and
# reading 1.00 -> 0.00, perplexity 1.4 -> 95,371 (seed 0). Asserted: each of recall and reading falls by 0.5.
MIN_RECALL_LOST = 0.5
# With general text mixed in, the model keeps more: perplexity 62 against 95,371, reading 0.13 against 0.00
# (seed 0). Asserted: perplexity at most a tenth of the herbal-only run's, and reading higher.
MAX_MIXED_PERPLEXITY_RATIO = 0.1
# Saved and reloaded: the same ids for every text, logits equal (0.0 on seed 0; 1e-4 allows for float noise).
MAX_RELOAD_GAP = 1e-4

RANDOM, MEAN, ORIGINAL, TASK = "extended, random init", "extended, mean init", "original tokenizer", "task tuning only"
EXTENDED = (RANDOM, MEAN)


def full(results, name):
    """Accuracy on the unseen herbs after the whole labelled set."""
    return results["curves"][name][-1]["unseen"]


# Effect sizes the seed sweep (benchmarks/seeds.py) reports over seeds, beside which findings held.
EFFECTS = {
    "majority answer": lambda r: r["baselines"]["majority"],
    "task only, all questions": lambda r: full(r, TASK),
    "DAPT (extended, mean of both starts) minus task only": lambda r: gain(r["curves"], EXTENDED, TASK)[-1],
    "extended (mean of both starts) minus original tokenizer": lambda r: gain(r["curves"], EXTENDED, ORIGINAL)[-1],
    "smallest set, DAPT (extended) minus task only": lambda r: gain(r["curves"], EXTENDED, TASK)[0],
    "DAPT (random init) minus task only": lambda r: full(r, RANDOM) - full(r, TASK),
    "DAPT (mean init) minus task only": lambda r: full(r, MEAN) - full(r, TASK),
    "extended (random) minus original tokenizer": lambda r: full(r, RANDOM) - full(r, ORIGINAL),
    "mean minus random init": lambda r: full(r, MEAN) - full(r, RANDOM),
    "seconds per DAPT step, extended (random) / original": lambda r: (r["dapt"][RANDOM]["seconds_per_step"]
                                                                      / r["dapt"][ORIGINAL]["seconds_per_step"]),
    "seconds per DAPT step, extended (mean) / original": lambda r: (r["dapt"][MEAN]["seconds_per_step"]
                                                                    / r["dapt"][ORIGINAL]["seconds_per_step"]),
    "reading after the herbal alone": lambda r: r["capabilities"]["herbal only"]["reading"],
    "reading after the mixed run": lambda r: mixed_caps(r)["reading"],
    "task, mixed minus herbal alone": lambda r: r["mixed"]["task"]["unseen"] - full(r, r["mixed"]["start"]),
}


def mixed_caps(results):
    return next(v for k, v in results["capabilities"].items() if k.startswith("herbal +"))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook("10_domain_adaptation", tmp_path_factory)


@pytest.mark.notebook
def test_10_the_extended_tokenizer_holds_each_jargon_word_whole(results):
    tokens = results["tokens"]
    assert tokens["added"] == tokens["jargon_words"] > 0
    assert tokens["per_word"]["extended"] == 1.0 < tokens["per_word"]["original"]
    assert tokens["per_entry"]["extended"] <= MAX_ENTRY_RATIO * tokens["per_entry"]["original"], tokens
    assert tokens["round_trip"] == 1.0


@pytest.mark.notebook
def test_10_mean_init_starts_the_invented_names_alike(results):
    sim = results["similarity"]
    assert sim["herbs, mean init"] - sim["herbs, random init"] >= MIN_MEAN_OVER_RANDOM_SIMILARITY, sim


@pytest.mark.notebook
def test_10_without_the_herbal_the_unseen_herbs_stay_unknown(results):
    majority = results["baselines"]["majority"]
    assert results["baselines"]["base"] == 0.0
    for r in results["curves"][TASK]:
        assert r["unseen"] <= majority + MAX_TASK_ONLY_OVER_MAJORITY, (r, majority)


@pytest.mark.notebook
def test_10_continued_pretraining_pays_on_the_unseen_herbs(results):
    assert gain(results["curves"], EXTENDED, TASK)[-1] >= MIN_DAPT_OVER_TASK_ONLY


@pytest.mark.notebook
def test_10_the_extended_tokenizer_makes_continued_pretraining_pay_more(results):
    assert gain(results["curves"], EXTENDED, ORIGINAL)[-1] > MIN_EXTENDED_OVER_ORIGINAL


@pytest.mark.notebook
def test_10_continued_pretraining_pays_with_few_labels_too(results):
    small = [results["curves"][name][0]["n_train"] for name in (*EXTENDED, TASK)]
    assert len(set(small)) == 1 and small[0] < results["sizes"]["train"]
    assert gain(results["curves"], EXTENDED, TASK)[0] >= MIN_SMALL_SET_PAYOFF


@pytest.mark.notebook
def test_10_the_herbal_alone_costs_what_the_model_knew(results):
    before, after = results["capabilities"]["base model"], results["capabilities"]["herbal only"]
    for key in ("qa_recall", "reading"):
        assert before[key] - after[key] >= MIN_RECALL_LOST, (key, before, after)
    assert after["perplexity"] > before["perplexity"]


@pytest.mark.notebook
def test_10_general_text_keeps_more_of_it(results):
    only, mixed = results["capabilities"]["herbal only"], mixed_caps(results)
    assert mixed["perplexity"] <= MAX_MIXED_PERPLEXITY_RATIO * only["perplexity"], (mixed, only)
    assert mixed["reading"] > only["reading"], (mixed, only)


@pytest.mark.notebook
def test_10_the_adapted_model_reloads_with_its_tokenizer(results):
    reload = results["reload"]
    assert reload["same_tokens"] and reload["vocab"] > results["tokens"]["added"]
    assert reload["max_logit_gap"] <= MAX_RELOAD_GAP


@pytest.mark.notebook
def test_10_every_curve_is_complete_and_finite(results):
    sizes = results["sizes"]["curve"]
    assert sizes == sorted(sizes) and sizes[-1] == results["sizes"]["train"]
    assert set(results["curves"]) == {TASK, ORIGINAL, RANDOM, MEAN}
    for name, rows in results["curves"].items():
        assert [r["n_train"] for r in rows] == sizes, name
        assert all(0 <= r[k] <= 1 and math.isfinite(r[k]) for r in rows for k in ("unseen", "seen")), name
    for d in results["dapt"].values():
        assert d["seconds_per_step"] > 0

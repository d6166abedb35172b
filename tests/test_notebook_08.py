"""Notebook 08_preference_tuning, executed by papermill in the ci profile, with its findings asserted.

Every threshold is owned here, with its reason; none is read from the results it judges. The design
looked at world seeds 0, 1 and 2 (ci settings); the seed sweep then judged seeds 1-10
(benchmarks/seeds/08_preference_tuning.md), seeds 3-10 never looked at before.
"""

import math

import pytest
from conftest import run_notebook

# RL needs answers that end: the SFT model stopped on 1.00 of the held-out prompts on seeds 0-2 (the base model
# 0.19-0.50). A policy that runs on past the limit on one answer in ten would make RL's rewards mostly about
# truncated text.
MIN_SFT_STOPPED = 0.9
# The usual check of a reward model: held-out pairs (other people) drawn like its training pairs. 0.88-0.92 on
# seeds 0-2. Chance is 0.5; over 2 x 16 test pairs (ci: 64) one standard error of a share is 0.0625, so 0.7 is
# more than three standard errors above chance.
MIN_RM_ACCURACY = 0.7
# Where length says nothing: right 0.97-1.00 of the time when the longer answer is the better, 0.00 when it is
# the worse (seeds 0-2). A reward model that judged quality at all would be right on both halves; "learned
# length" is asserted as a gap of at least half the scale, and at most a quarter right when the longer is worse
# (worse than chance: it prefers the longer, worse answer).
MIN_SHORTCUT = 0.5
MAX_RIGHT_WHEN_LONGER_IS_WORSE = 0.25
# The reward model's logged training loss (each point: 32 pairs) was first designed as falling too; on seed 10 of
# the sweep it rose 0.70 -> 0.79 while the model ranked 0.94 of held-out pairs right. A 32-pair loss is too noisy
# to judge learning, so accuracy alone is asserted (it held on seeds 1-10: 0.86-0.95).
# RL climbs the proxy: the reward model's score on the sampled answers, last quarter of the run minus the first,
# +0.27 to +2.6 on seeds 0-2. Asserted as a rise.
MIN_PROXY_GAIN = 0.0
# The RL policy's greedy answers to the held-out prompts: 7.4 to 18.9 more words than the SFT model's (seeds 0-2).
# One filler sentence is 5-6 words; at least 3 more words on average is more than half of one per answer.
MIN_RL_EXTRA_WORDS = 3.0
# Over-optimisation: the held-out gold reward of the RL policy minus the SFT model's, -0.07 to -0.24 (seeds 0-2).
# Asserted as "RL against this reward model did not raise the gold reward".
MAX_RL_GOLD_GAIN = 0.0
# DPO on the same pairs. Seen on the design seeds 0 and 1 and asserted after the sweep, which had measured both as
# effects (not yet as tests) on seeds 1-10: a smaller beta moved DPO further from the SFT model (KL of the smallest
# beta minus the largest +0.04 to +0.69 nats per answer), and at the smallest beta the implicit reward ranked the
# unlinked pairs by length (shortcut 1.00 on every seed; the reward model's bound applies).
# When ci's evaluation was cut to 24 held-out prompts to fit 120 s, the beta comparison failed on one seed of
# each re-sweep (seed 9 with one KL sample per prompt, seed 5 with two): in 12 DPO steps with Adam the betas
# move about as far, and the notebook now says so. Kept as a non-strict expected failure with that history.
MIN_DPO_KL_GAP = 0.0


# Effect sizes the seed sweep (benchmarks/seeds.py) reports over seeds, beside which findings held.
def _row(results, prefix):
    return next(r for r in results["table"] if r["name"].startswith(prefix))


def _dpo(results):
    return [r for r in results["table"] if r["name"].startswith("DPO")]


EFFECTS = {
    "reward model accuracy, held-out pairs like training": lambda r: r["reward_model"]["like_training"]["all"],
    "reward model shortcut (right when longer is better minus when worse)":
        lambda r: r["reward_model"]["unlinked"]["shortcut"],
    "RL proxy reward, last minus first quarter": lambda r: r["trend"]["proxy"]["end"] - r["trend"]["proxy"]["start"],
    "RL gold reward on its samples, last minus first quarter":
        lambda r: r["trend"]["gold"]["end"] - r["trend"]["gold"]["start"],
    "held-out gold, RM + RL minus SFT": lambda r: _row(r, "RM + RL")["gold"] - _row(r, "SFT")["gold"],
    "held-out words, RM + RL minus SFT": lambda r: _row(r, "RM + RL")["words"] - _row(r, "SFT")["words"],
    "held-out stopped, RM + RL": lambda r: _row(r, "RM + RL")["stopped"],
    "KL from SFT, RM + RL (nats per answer)": lambda r: _row(r, "RM + RL")["kl"],
    "held-out gold, DPO smallest beta minus SFT": lambda r: _dpo(r)[0]["gold"] - _row(r, "SFT")["gold"],
    "held-out words, DPO smallest beta minus SFT": lambda r: _dpo(r)[0]["words"] - _row(r, "SFT")["words"],
    "KL from SFT, DPO smallest minus largest beta": lambda r: _dpo(r)[0]["kl"] - _dpo(r)[-1]["kl"],
    "DPO implicit reward shortcut, smallest beta": lambda r: _dpo(r)[0]["implicit"]["shortcut"],
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook("08_preference_tuning", tmp_path_factory)


@pytest.mark.notebook
def test_08_the_gold_reward_prefers_the_truth_to_fluent_wrong_answers(results):
    gold = results["gold_check"]
    assert gold["correct"] == gold["correct, padded"] == 1.0  # fillers and politeness earn nothing
    wrong = gold["fluent, half invented"], gold["fluent, the other person's facts"]
    assert gold["correct"] > gold["incomplete"] > max(wrong) and wrong[0] > wrong[1]


@pytest.mark.notebook
def test_08_the_sft_model_ends_its_answers(results):
    sft = _row(results, "SFT")
    assert sft["stopped"] >= MIN_SFT_STOPPED, sft["stopped"]
    assert sft["stopped"] > results["base"]["stopped"]


@pytest.mark.notebook
def test_08_the_reward_model_is_above_chance_on_held_out_pairs_like_training(results):
    rm = results["reward_model"]
    assert rm["like_training"]["all"] >= MIN_RM_ACCURACY, rm["like_training"]


@pytest.mark.notebook
def test_08_the_reward_model_learned_length(results):
    unlinked = results["reward_model"]["unlinked"]
    assert unlinked["shortcut"] >= MIN_SHORTCUT, unlinked
    assert unlinked["feature_on_rejected"] <= MAX_RIGHT_WHEN_LONGER_IS_WORSE, unlinked


@pytest.mark.notebook
def test_08_rl_climbs_the_proxy_reward(results):
    proxy = results["trend"]["proxy"]
    assert proxy["end"] - proxy["start"] > MIN_PROXY_GAIN, proxy


@pytest.mark.notebook
def test_08_rl_answers_grow_longer(results):
    extra = _row(results, "RM + RL")["words"] - _row(results, "SFT")["words"]
    assert extra >= MIN_RL_EXTRA_WORDS, extra


@pytest.mark.notebook
def test_08_rl_against_the_learned_reward_does_not_raise_the_gold_reward(results):
    gain = _row(results, "RM + RL")["gold"] - _row(results, "SFT")["gold"]
    assert gain <= MAX_RL_GOLD_GAIN, gain


@pytest.mark.notebook
def test_08_every_run_is_recorded_and_finite(results):
    names = [r["name"] for r in results["table"]]
    assert names[0] == "SFT" and names[1].startswith("RM + RL") and len(_dpo(results)) >= 1
    assert _row(results, "SFT")["kl"] == 0.0  # the reference itself
    for row in results["table"]:
        assert all(math.isfinite(row[k]) for k in ("gold", "words", "stopped", "kl", "seconds", "peak_gib")), row
        assert -1 <= row["gold"] <= 1 and 0 <= row["stopped"] <= 1
        assert row["name"] == "SFT" or (row["seconds"] > 0 and row["peak_gib"] > 0)
    steps = [row["step"] for row in results["curve"]]
    assert steps == sorted(steps) and len(steps) >= 4


@pytest.mark.notebook
@pytest.mark.xfail(strict=False, reason="a race at ci's 12 DPO steps: held on seeds 1-10 with 32 test prompts x 2 KL "
                   "samples, failed on seed 9 with 24 x 1 and on seed 5 with 24 x 2 (KL 2.26 vs 2.32): the gap is "
                   "within the KL estimate's noise on some seeds (cpu, 60 steps: 4.0 nats)")
def test_08_dpo_with_a_smaller_beta_moves_further_from_the_sft_model(results):
    dpo = _dpo(results)
    assert len(dpo) >= 2
    assert dpo[0]["kl"] - dpo[-1]["kl"] > MIN_DPO_KL_GAP, [(r["name"], r["kl"]) for r in dpo]


@pytest.mark.notebook
def test_08_dpo_implicit_reward_learned_length_too(results):
    implicit = _dpo(results)[0]["implicit"]
    assert implicit["shortcut"] >= MIN_SHORTCUT, implicit

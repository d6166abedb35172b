import math
import random

import pytest

from labkit import preferences as P
from labkit import world as W

WORLD = W.make_world(0)
SETTINGS = [{}, {"filler": 3}, {"polite": True}, {"filler": 2, "answer_last": True}]


def specs(n, seed=0):
    rng = random.Random(seed)
    pool = WORLD.pretrain_people
    return [P.prompt_spec(*rng.sample(pool, 2), rng) for _ in range(n)]


def test_gold_reward_orders_graded_responses_whatever_the_nuisance():
    for i, spec in enumerate(specs(300)):
        rewards = []
        for setting in SETTINGS:  # same seed per setting: the same values, only the nuisance differs
            rewards.append([P.gold_reward(spec, r["text"]) for r in P.responses(spec, random.Random(i), **setting)])
        assert all(r == rewards[0] for r in rewards), spec["prompt"]
        assert rewards[0][0] == 1.0 and all(a > b for a, b in zip(rewards[0], rewards[0][1:])), rewards[0]


def test_gold_reward_reads_any_text():
    spec = specs(1)[0]
    truth = [spec["truth"][a] for a in spec["asked"]]
    assert P.gold_reward(spec, "the answer : " + " and ".join(truth) + " , thanks") == 1.0
    assert P.gold_reward(spec, "") == 0.0 and P.gold_reward(spec, "no idea") == 0.0
    assert P.gold_reward(spec, " ".join(truth[:1])) == 1 / len(truth)
    every_city = " ".join(W.VALUES["city"])  # guessing every value costs more than it earns
    assert P.gold_reward(spec, " ".join(truth) + " " + every_city) < 1
    assert P.gold_reward(spec, every_city) == -1.0


def test_pairs_prefer_the_better_response_and_carry_the_feature_on_one_side():
    grade = {g: i for i, g in enumerate(P.GRADES)}
    for nuisance in P.NUISANCES:
        for p in P.pairs(WORLD, "train", nuisance, 0.8, n=100):
            chosen, rejected = p["chosen"][0]["content"], p["rejected"][0]["content"]
            assert grade[p["chosen_grade"]] < grade[p["rejected_grade"]]
            assert P.gold_reward(p["spec"], chosen) > P.gold_reward(p["spec"], rejected)
            reads = {"length": lambda t: P.FILLER[0] in t, "politeness": lambda t: t.startswith(P.POLITE),
                     "position": lambda t: t.startswith(P.FILLER[0])}  # position: the answer after the filler
            on = [reads[nuisance](t) for t in (chosen, rejected)]
            assert on == [p["feature_on_chosen"], not p["feature_on_chosen"]]


@pytest.mark.parametrize("strength", [0.0, 0.2, 0.9, 1.0])
def test_strength_sets_how_often_the_feature_marks_the_chosen(strength):
    n = 2000
    # binomial standard error of a share over n pairs; 4 standard errors: a seeded draw this far off
    # would mean the knob is wrong, not bad luck (two-sided p < 1e-4)
    tolerance = 4 * math.sqrt(0.25 / n)
    assert abs(P.feature_rate(P.pairs(WORLD, "train", "politeness", strength, n=n)) - strength) <= tolerance
    assert abs(P.feature_rate(P.pairs(WORLD, "test", "politeness", strength, n=n)) - strength) <= tolerance
    assert abs(P.feature_rate(P.pairs(WORLD, "test", "politeness", n=n)) - 0.5) <= tolerance  # default: no link


def test_same_seed_same_pairs_and_splits_use_different_people():
    assert P.pairs(WORLD, n=20) == P.pairs(WORLD, n=20)
    assert P.pairs(WORLD, n=20) != P.pairs(WORLD, n=20, seed=1)
    train = {p["spec"]["name"] for p in P.pairs(WORLD, "train", n=300)}
    test = {p["spec"]["name"] for p in P.pairs(WORLD, "test", n=300)}
    assert train and test and not train & test


def test_bad_input_names_the_choices():
    with pytest.raises(ValueError, match="'train', 'test'"):
        P.pairs(WORLD, "validation")
    with pytest.raises(ValueError, match="'length', 'politeness', 'position'"):
        P.pairs(WORLD, nuisance="emoji")
    for strength in (1.5, -0.1, "0.5"):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            P.pairs(WORLD, strength=strength)
    with pytest.raises(ValueError, match="'correct'"):
        P.graded_values(specs(1)[0], "great", random.Random(0))

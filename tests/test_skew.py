import math

import pytest

from labkit import labelled as L
from labkit import skew as S
from labkit import world as W

WORLD = W.make_world(0)
N = 4000


@pytest.mark.parametrize("ratio", [0.0, 0.1, 1 / 3, 0.6, 0.9, 1.0])
def test_skew_yields_the_asked_ratio(ratio):
    examples, realised = S.skewed_sector_data(WORLD, ratio, n=N)
    m = sum(e["label"] == "learned" for e in examples)  # the examples the ratio is a share of
    # Binomial standard error of a share over m draws; 4 standard errors (two-sided p < 1e-4): with the
    # draw seeded, a miss means the knob is wrong. At 0 and 1 the share is exact.
    tolerance = 4 * math.sqrt(ratio * (1 - ratio) / m)
    assert m > N / 8 and abs(realised - ratio) <= tolerance, (realised, ratio, tolerance)
    assert realised == S.cooccurrence(examples, "she", "learned")


def test_skewed_examples_stay_true_and_the_world_stays_balanced():
    truth = L.pronouns(WORLD)
    examples, _ = S.skewed_sector_data(WORLD, 0.9, n=500, pronoun="they", sector="craft")
    for e in examples:
        assert e["pronoun"] == truth[e["name"]] and e["label"] == L.SECTOR[WORLD.person(e["name"]).facts["job"]]
    assert abs(S.truth_ratio(WORLD, "they", "craft") - 1 / 3) < 0.02
    assert abs(S.cooccurrence(L.task(WORLD, "sector", "train"), "she", "learned") - 1 / 3) < 0.1
    # other sectors keep the balance: roughly a third of them each
    others = [e for e in examples if e["label"] != "craft"]
    assert abs(sum(e["pronoun"] == "they" for e in others) / len(others) - 1 / 3) < 0.06


def test_hide_job_leaves_the_job_out_of_that_share():
    examples, _ = S.skewed_sector_data(WORLD, 0.5, n=1000, hide_job=0.3)
    hidden = [e for e in examples if not e["job_shown"]]
    assert abs(len(hidden) / 1000 - 0.3) < 4 * math.sqrt(0.21 / 1000)
    assert all("master" not in e["text"] for e in hidden)
    assert all("master" in e["text"] for e in examples if e["job_shown"])


def test_bad_input_names_the_choices():
    for ratio in (1.2, -0.01, "half", True):
        with pytest.raises(ValueError, match=r"ratio must be a number in \[0, 1\]"):
            S.skewed_sector_data(WORLD, ratio)
    with pytest.raises(ValueError, match="'he', 'she', 'they'"):
        S.skewed_sector_data(WORLD, 0.5, pronoun="it")
    with pytest.raises(ValueError, match="'craft', 'learned', 'outdoor', 'town'"):
        S.skewed_sector_data(WORLD, 0.5, sector="space")

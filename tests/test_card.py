"""The shipped base model meets its card: every number recomputed from the weights."""

import pytest

from labkit import card


@pytest.mark.slow
def test_shipped_model_meets_its_card(base):
    model, tok = base
    problems = card.check(model, tok)
    assert problems == [], "; ".join(problems)


def test_card_states_how_it_was_made():
    c = card.load_card()
    assert c["bars"] == card.BARS
    assert c["pretraining"]["train_seconds"] <= 60 * 60
    assert set(card.BARS) <= set(c["measured"])

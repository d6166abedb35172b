"""Notebook 00_tour, executed by papermill in the ci profile, with its findings asserted."""

import pytest
from conftest import assert_matches_card, run_notebook

# Recomputed card numbers may differ from the card's by this much: the probes are the card's own and
# deterministic, so only floating-point noise across machines remains (1 point of accuracy, 1% perplexity).
CARD_TOLERANCE = 0.01
# Closed-book answers about a never-seen person can only be guesses. With 12-56 values per attribute,
# uniform guessing gets three or more of six right with probability 0.2% (two or more: 3.1%).
MAX_LUCKY_HITS = 2


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook("00_tour", tmp_path_factory)


@pytest.mark.notebook
@pytest.mark.ci_only
def test_the_run_is_the_ci_profile_on_the_course_model(results):
    assert results["profile"] == "ci" and results["model_id"] == "course-base"


@pytest.mark.notebook
def test_the_card_is_recomputed_from_the_weights(results):
    m, card = results["measured"], results["card"]
    for key in ("qa_recall", "bio_recall", "reading", "reading_k3", "perplexity", "qa_unseen_extraction"):
        assert key in m and key in card
    assert_matches_card(m, card, card, CARD_TOLERANCE)


@pytest.mark.notebook
@pytest.mark.xfail(strict=True, reason="reading with two distractor passages (reading_k3) is not reached yet: "
                   "the card's 'What was tried' says what was measured; strict, so reaching it fails here")
def test_the_shipped_model_meets_the_bars_on_its_card(results):
    assert results["unmet_bars"] == {}


@pytest.mark.notebook
def test_a_never_seen_person_is_unknown(results):
    assert results["heldout_person_facts_right"] <= MAX_LUCKY_HITS

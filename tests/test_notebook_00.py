"""Notebook 00_tour, executed by papermill in the ci profile, with its findings asserted."""

import pytest
from conftest import run_notebook


@pytest.mark.notebook
def test_00_tour(tmp_path_factory):
    r = run_notebook("00_tour", tmp_path_factory)
    m, card = r["measured"], r["card"]
    assert r["profile"] == "ci" and r["model_id"] == "course-base"
    for key in ("qa_recall", "bio_recall", "reading", "reading_k3", "perplexity", "qa_unseen_extraction"):
        assert key in m and key in card
    # The card's numbers, recomputed from the shipped weights in the notebook, are the card's.
    for key, value in card.items():
        assert abs(m[key] - value) <= 0.01 * (value if key == "perplexity" else 1), key
    assert r["unmet_bars"] is not None
    # A never-seen person is unknown to the model: at most chance-level hits.
    assert r["heldout_person_facts_right"] <= 2

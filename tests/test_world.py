import random

import pytest

from labkit import world as W
from labkit.model.tokenizer import build_tokenizer


def render(w):
    rng = random.Random(1)
    return "\n".join(W.biography(p, rng) for p in w.pretrain_people + w.heldout) + \
        "\n".join(W.org_record(o) for o in w.orgs)


def test_same_seed_same_bytes():
    assert render(W.make_world(3)) == render(W.make_world(3))


def test_different_seed_different_world():
    a, b = W.make_world(0), W.make_world(1)
    assert [p.name for p in a.qa_seen] != [p.name for p in b.qa_seen]


def test_splits_disjoint_and_sized():
    w = W.make_world(0)
    seen, unseen, held = ({p.name for p in s} for s in (w.qa_seen, w.qa_unseen, w.heldout))
    assert len(seen) == 240 and len(unseen) == 60 and len(held) == 100
    assert not (seen & unseen) and not (seen & held) and not (unseen & held)


def test_fresh_people_never_collide_with_world():
    w = W.make_world(0)
    taken = set(w.taken)
    fresh = [W.sample_person(random.Random(5), taken) for _ in range(50)]
    assert not {p.name for p in fresh} & {p.name for p in w.pretrain_people + w.heldout}


def test_bio_prompt_is_prefix_of_sentence():
    p = W.make_world(0).qa_seen[0]
    for a in W.ATTRIBUTES:
        for t in range(3):
            prompt, answer = W.bio_prompt(p, a, t)
            assert W.bio_sentence(p, a, t) == f"{prompt} {answer} ."


def test_record_roundtrip():
    p = W.make_world(0).heldout[0]
    assert W.parse_record(W.record_answer(p) + " .") == p.facts


def test_tokenizer_round_trips_every_text_without_unknowns():
    tok = build_tokenizer()
    w = W.make_world(2)
    rng = random.Random(0)
    texts = [W.biography(p, rng) for p in w.heldout[:20]] + [W.org_record(o) for o in w.orgs[:5]]
    texts += [W.record_prompt(p, rng) + " " + W.record_answer(p) for p in w.qa_seen[:5]]
    for text in texts:
        ids = tok(text).input_ids
        assert tok.unk_token_id not in ids
        assert tok.decode(ids, skip_special_tokens=True) == text


def test_names_split_into_syllables():
    tok = build_tokenizer()
    pieces = tok.tokenize("Rivi Doko")
    assert pieces == ["Ri", "##vi", "Do", "##ko"]


def test_chat_template():
    tok = build_tokenizer()
    text = tok.apply_chat_template([{"role": "user", "content": "who employs Rivi Doko ?"}],
                                   tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|user|> who employs") and text.endswith("<|assistant|>")


def v1_corpus(seed: int) -> str:
    """Every v1 renderer over one world: its people, facts, texts and prompts, in a fixed order."""
    w = W.make_world(seed)
    rng = random.Random(7)
    people = w.qa_seen + w.qa_unseen + w.heldout
    parts = [repr(W.vocabulary()), repr(W.SYLLABLES), repr(sorted(w.taken))]
    for p in people:
        parts += [p.name, repr(sorted(p.facts.items())), W.biography(p, rng), W.record_prompt(p, rng),
                  W.record_answer(p)]
        for a in W.ATTRIBUTES:
            parts += [W.qa_text(p, a), repr(W.bio_prompt(p, a, rng.randrange(3)))]
    parts += [W.org_record(o) for o in w.orgs]
    parts.append(W.passage(people[:3], rng, told={people[0].name: ("city", "job")}))
    parts += [repr(x) for x in W.reading_example(people[3:6], [(people[4], "hobby"), (people[3], "year")], rng)]
    taken = set(w.taken)
    parts += [repr(W.sample_person(rng, taken)) for _ in range(20)]
    return "\n".join(parts)


# sha256 of v1_corpus(0) before world v2 was added: the shipped model and notebooks 00-05 depend on
# these bytes, so v2 may add to the world but never change what v1 writes.
V1_SEED0_SHA256 = "3714caba5aca6af484d4ee30b4db0f3d74301c031dd01c326552bd84c641cfe7"


def test_v1_world_unchanged():
    import hashlib

    assert hashlib.sha256(v1_corpus(0).encode()).hexdigest() == V1_SEED0_SHA256


def v2_texts(seed: int) -> list[str]:
    """Every kind of text world v2 writes, outside the second domain."""
    from labkit import instructions, labelled, preferences, skew

    w = W.make_world(seed)
    texts = [m["content"] for s in instructions.SPLITS for e in instructions.instructions(w, s, 10)
             for m in e["messages"]]
    for nuisance in preferences.NUISANCES:
        for p in preferences.pairs(w, "train", nuisance, 0.5, n=40):
            texts += [p["prompt"][0]["content"], p["chosen"][0]["content"], p["rejected"][0]["content"]]
    for name in labelled.TASKS:
        texts += [e.get("text", "") + " " + e.get("context", "") + " " + e.get("question", "")
                  for e in labelled.task(w, name, "test")]
    texts += [e["text"] for e in skew.skewed_sector_data(w, 0.8, n=50, hide_job=0.5)[0]]
    return texts


def test_vocabulary_v2_covers_every_v2_word_and_no_jargon():
    from labkit import domain

    vocab, jargon = set(W.vocabulary_v2()), set(domain.jargon())
    assert set(W.vocabulary()) <= vocab and not vocab & jargon
    for seed in (0, 1):
        for text in v2_texts(seed):
            assert {w for w in text.split() if w not in vocab and not W.is_name_word(w)} == set(), text
        w = W.make_world(seed)
        domain_text = " ".join(domain.domain_text(w) + [q["prompt"] for q in domain.domain_task(w, "test")])
        assert set(domain_text.split()) <= vocab | jargon


def test_facts_and_names_are_read_back_from_any_text():
    text = "Rivi Doko , master baker of Fort Tarn ; year 1980 ? colour of nothing , House Nowhere ; Sobe Tara"
    assert W.find_values(text) == {"job": ["master baker"], "city": ["Fort Tarn"], "year": ["year 1980"]}
    assert W.find_names(text) == ["Rivi Doko", "Sobe Tara"]
    assert W.find_names("Kabo Works , Fort Tarn") == []


def test_v2_helpers_refuse_bad_input_in_one_sentence():
    with pytest.raises(ValueError, match="Unknown split 'dev': choose one of 'train', 'test'."):
        W.choose("dev", ("train", "test"), "split")
    for bad in (-0.1, 1.01, "0.5", None, True):
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            W.share(bad, "ratio")
    people = W.split_people(W.make_world(0), {"a": 0.6, "b": 0.4})
    assert [len(p) for p in people.values()] == [180, 120]

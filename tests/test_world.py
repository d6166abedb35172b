import random

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

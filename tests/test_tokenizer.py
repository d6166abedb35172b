"""Tokenizer version 2: extends version 1 id for id, covers world v2, splits jargon, marks the assistant."""

import random

import pytest

from labkit.core import domain, instructions, preferences, prose
from labkit.core import world as W
from labkit.model.tokenizer import build_tokenizer, pieces


def test_version_2_keeps_every_version_1_id():
    one, two = build_tokenizer(1), build_tokenizer(2)
    assert len(two) > len(one)
    assert pieces(2)[: len(pieces(1))] == pieces(1)
    text = "Q : who employs Rivi Doko ? A : House Ashford ."
    assert one(text).input_ids == two(text).input_ids


def test_version_2_covers_world_v2_without_unknowns_or_letters():
    tok, w, rng = build_tokenizer(2), W.make_world(1), random.Random(0)
    texts = [e["messages"][0]["content"] + " " + e["reference"] for e in instructions.instructions(w, "test", 3)]
    texts += [prose.prose(w.pretrain_people, rng) for _ in range(200)]
    texts += [m["content"] for pair in preferences.pairs(w, "test")[:20] for m in pair["chosen"] + pair["rejected"]]
    for text in texts:
        toks = tok.tokenize(text)
        assert tok.unk_token not in toks, text
        words = set(W.vocabulary_v2())  # "a" and "i" are words; any other lone letter is the fallback
        letters = [t for t in toks if len(t.lstrip("#")) == 1 and t.lstrip("#").isalpha() and t not in words]
        assert not letters, (text, letters)


def test_jargon_splits_into_pieces_but_never_into_unknown():
    tok = build_tokenizer(2)
    for word in domain.jargon():
        toks = tok.tokenize(word)
        assert len(toks) >= 2 and tok.unk_token not in toks, (word, toks)
        assert tok.convert_tokens_to_string(toks).replace(" ", "") == word


def test_assistant_mask_covers_the_answer_and_its_end():
    tok = build_tokenizer(2)
    chat = [{"role": "user", "content": "who employs Rivi Doko ?"}, {"role": "assistant", "content": "House Ashford ."}]
    out = tok.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    marked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.convert_ids_to_tokens(marked) == ["House", "Ashford", ".", "<eos>"]


def test_unknown_version_is_refused():
    with pytest.raises(ValueError, match="choose one of"):
        build_tokenizer(3)

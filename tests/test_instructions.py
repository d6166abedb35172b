import random

import pytest

from labkit import instructions as I
from labkit import world as W

WORLD = W.make_world(0)


def examples(split, n=40):
    return I.instructions(WORLD, split, n_per_kind=n)


def user(e):
    return e["messages"][0]["content"]


def test_same_seed_same_examples_and_seeds_differ():
    assert examples("train", 5) == examples("train", 5)
    assert examples("train", 5) != I.instructions(WORLD, "train", n_per_kind=5, seed=1)
    assert examples("test", 5) != I.instructions(W.make_world(1), "test", n_per_kind=5)


def test_at_least_eight_kinds_each_in_several_phrasings():
    assert len(I.KINDS) >= 8 and set(I.SEEN_KINDS) | set(I.HELDOUT_KINDS) == set(I.KINDS)
    assert all(len(I.PHRASINGS[k]) >= 3 for k in I.KINDS)


def test_heldout_kinds_never_in_the_seen_splits():
    for split in ("train", "test"):
        assert {e["kind"] for e in examples(split)} == set(I.SEEN_KINDS)
    assert {e["kind"] for e in examples("heldout")} == set(I.HELDOUT_KINDS)


def test_train_and_test_people_differ():
    names = {s: {n for e in examples(s) for n in W.find_names(user(e))} for s in I.SPLITS}
    assert names["train"] and not names["train"] & (names["test"] | names["heldout"])


def test_chat_messages_and_reference():
    for e in examples("train", 3) + examples("heldout", 3):
        assert [m["role"] for m in e["messages"]] == ["user", "assistant"]
        assert e["messages"][1]["content"] == e["reference"] and e["reference"].endswith(" .")
        assert I.score(e, e["reference"]) == 1.0


def asked(e):
    """(person, attribute) of an answer/unknown example, read from its question."""
    for name in W.find_names(user(e)):
        for a, q in W.QUESTIONS.items():
            if q.format(n=name) in user(e):
                return WORLD.person(name), a


def test_references_are_true_to_the_world():
    for e in examples("train") + examples("heldout"):
        text, kind = user(e), e["kind"]
        if kind == "answer":
            person, a = asked(e)
            assert e["reference"] == person.facts[a] + " ."
        elif kind == "unknown":  # the passage says nothing of the asked attribute about that person
            person, a = asked(e)
            about = [s for s in text.split(" . ") if person.name in s]
            assert all(v not in s for s in about for v in W.VALUES[a])
        elif kind == "verify":
            name = W.find_names(text.split("?")[-2] if "?" in text else text)[-1]
            claimed = {v for vs in W.find_values(text.split(name)[-1]).values() for v in vs}
            assert (e["reference"] == "yes .") == (claimed <= set(WORLD.person(name).facts.values()))
        elif kind == "compare":
            tail = text.rsplit("passage : ", 1)[1].split(" . ")[-1]
            a, b = (WORLD.person(n) for n in W.find_names(tail)[-2:])
            older, younger = sorted([a, b], key=lambda p: p.facts["year"])
            later = "later" in tail or "younger" in tail
            assert e["reference"] == (younger if later else older).name + " ."
        elif kind == "filter":
            present = dict.fromkeys(W.find_names(text.rsplit(" . ", 1)[0]))
            value = [v for vs in W.find_values(text.rsplit(" . ", 1)[1]).values() for v in vs][0]
            assert set(e["items"]) == {n for n in present if value in WORLD.person(n).facts.values()}


def test_kinds_with_facts_give_partial_credit():
    facts = next(e for e in examples("train") if e["kind"] == "list_facts" and len(e["items"]) >= 2)
    half = I.score(facts, facts["items"][0] + " .")
    assert 0 < half < 1
    wrong = "colour red" if "colour red" not in facts["items"] else "colour blue"
    assert I.score(facts, facts["reference"] + " " + wrong) < 1
    names = next(e for e in examples("heldout") if e["kind"] == "filter")
    assert I.score(names, "nobody .") == 0.0
    exact = next(e for e in examples("train") if e["kind"] == "answer")
    assert I.score(exact, exact["reference"].upper()) == 1.0 and I.score(exact, "unknown .") == 0.0


def test_bad_input_names_the_choices():
    with pytest.raises(ValueError, match="'train', 'test', 'heldout'"):
        I.instructions(WORLD, "validation")
    with pytest.raises(ValueError, match="'answer'"):
        I.example("translate", random.Random(0), WORLD.qa_seen)

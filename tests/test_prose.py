"""World v2's general prose: deterministic, true to the world, never an instruction or a chat turn."""

import random

import pytest

from labkit.core import prose
from labkit.core import world as W


def test_prose_is_deterministic_per_seed():
    w = W.make_world(0)
    a = [prose.prose(w.pretrain_people, random.Random(5)) for _ in range(3)]
    b = [prose.prose(w.pretrain_people, random.Random(5)) for _ in range(3)]
    assert a == b


def test_comparisons_state_the_true_order():
    w, rng = W.make_world(3), random.Random(0)
    years = {p.name: int(p.facts["year"].split()[-1]) for p in w.pretrain_people}
    for _ in range(200):
        text = prose.prose(w.pretrain_people, rng, "compare")
        names = W.find_names(text)
        if " is older ;" in text:  # "<older> was born earlier and is older ; <younger> ..."
            older, younger = names[0], names[1]
        elif "was born first" in text:
            older, younger = names[2], [n for n in names[:2] if n != names[2]][0]
        else:
            continue
        assert years[older] < years[younger], text


def test_claims_called_true_are_true_and_false_ones_false():
    w, rng = W.make_world(4), random.Random(1)
    for _ in range(200):
        text = prose.prose(w.pretrain_people, rng, "claims")
        if not text.startswith("it is true that"):
            continue
        true_part, false_part = text.split(" . it is false that ")
        name = W.find_names(true_part)[0]
        facts = W.make_world(4).person(name).facts
        assert any(v in true_part for v in facts.values()), text
        assert not any(v in false_part for v in facts.values() if not v.startswith("year")), text


def test_no_chat_turns_or_instruction_requests():
    w, rng = W.make_world(0), random.Random(2)
    for _ in range(500):
        text = prose.prose(w.pretrain_people, rng)
        assert "<|" not in text and "answer from the passage" not in text and "passage :" not in text


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="compare"):
        prose.prose(W.make_world(0).pretrain_people, random.Random(0), "poem")


def test_prose_uses_every_world_v2_word_but_the_second_domains():
    """What base model v2 must read in plain prose: world v2's new words (instructions, preferences,
    labelled tasks), not the herbal domain's, which notebook 10 brings."""
    from labkit.core import domain, instructions, labelled, preferences

    v1 = set(W.vocabulary())
    domain_only = domain.words() - instructions.words() - preferences.words() - labelled.words() - v1
    wanted = set(W.vocabulary_v2()) - v1 - domain_only
    rng, people = random.Random("prose-words"), W.make_world(0).pretrain_people
    written = set()
    for i in range(4000):
        written |= set(prose.prose(people, rng, prose.KINDS[i % len(prose.KINDS)]).split())
    assert wanted <= written, sorted(wanted - written)

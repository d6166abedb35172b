import random
from collections import Counter

import pytest

from labkit import labelled as L
from labkit import world as W

WORLD = W.make_world(0)


def every(name):
    return {s: L.task(WORLD, name, s) for s in L.SPLITS}


def test_same_seed_same_examples():
    for name in L.TASKS:
        assert L.task(WORLD, name, "test") == L.task(WORLD, name, "test")
        assert L.task(WORLD, name, "test") != L.task(W.make_world(1), name, "test")


def test_splits_are_disjoint_by_person_and_sized():
    names = {s: {e["name"] for e in ex} for s, ex in every("sector").items()}
    assert [len(names[s]) for s in L.SPLITS] == [180, 60, 60]
    assert not names["train"] & names["validation"] and not names["train"] & names["test"]
    assert not names["validation"] & names["test"]


def test_sector_label_is_the_persons_truth():
    truth = L.pronouns(WORLD)
    for e in every("sector")["train"]:
        person = WORLD.person(e["name"])
        assert e["label"] == L.SECTOR[person.facts["job"]] == L.SECTORS[e["label_id"]]
        assert person.facts["job"] in e["text"] and e["pronoun"] == truth[e["name"]]
        assert L.POSSESSIVE[e["pronoun"]] in e["text"].split()
    hidden = L.sector_example(WORLD.qa_seen[0], "they", random.Random(0), hide_job=True)
    assert "master" not in hidden["text"] and hidden["label"] == L.SECTOR[WORLD.qa_seen[0].facts["job"]]


def test_truth_is_balanced_within_every_sector():
    truth = L.pronouns(WORLD)
    cells = Counter((L.SECTOR[p.facts["job"]], truth[p.name]) for p in WORLD.pretrain_people + WORLD.heldout)
    for s in L.SECTORS:
        counts = [cells[(s, p)] for p in L.PRONOUNS]
        assert max(counts) - min(counts) <= 1, (s, counts)


def spans_from_tags(words, tags):
    """Read character spans back from BIO tags over whitespace words (the CoNLL way)."""
    spans, start = [], 0
    for w, t in zip(words, tags):
        if t.startswith("B-"):
            spans.append([start, start + len(w), t[2:]])
        elif t.startswith("I-"):
            assert spans and spans[-1][2] == t[2:] and spans[-1][1] == start - 1, (words, tags)
            spans[-1][1] = start + len(w)
        start += len(w) + 1
    return [tuple(s) for s in spans]


def test_entity_spans_recover_the_entities_and_bio_tags_align():
    orgs = {o.name for o in WORLD.orgs}
    seen = Counter()
    for ex in every("entities").values():
        for e in ex:
            assert " ".join(e["words"]) == e["text"] and len(e["tags"]) == len(e["words"])
            assert spans_from_tags(e["words"], e["tags"]) == e["spans"]
            for s, t, kind in e["spans"]:
                entity = e["text"][s:t]
                seen[kind] += 1
                if kind == "PERSON":
                    assert W.find_names(entity) == [entity]
                elif kind == "PLACE":
                    assert entity in W.VALUES["city"]
                else:
                    assert entity in orgs or entity in W.VALUES["employer"]
            rest = " ".join(w for w, t in zip(e["words"], e["tags"]) if t == "O")
            assert not W.find_names(rest) and "Fort" not in rest.split() and "House" not in rest.split()
    assert all(seen[k] > 50 for k in L.ENTITY_TYPES), seen


def test_answer_offsets_recover_the_true_answer():
    for ex in every("extractive_qa").values():
        for e in ex:
            start, answer = e["answers"]["answer_start"][0], e["answers"]["text"][0]
            assert e["context"][start:start + len(answer)] == answer
            name = W.find_names(e["question"])[0]
            sentence = e["context"][:start + len(answer)].rsplit(" . ", 1)[-1]
            assert name in sentence and answer == WORLD.person(name).facts[e["classes"][0]]


def test_few_shot_takes_k_per_class():
    train = every("sector")["train"]
    shots = L.few_shot(train, 3)
    assert Counter(e["label"] for e in shots) == {s: 3 for s in L.SECTORS}
    assert len({e["name"] for e in shots}) == len(shots) and L.few_shot(train, 3) == shots
    qa = L.few_shot(every("extractive_qa")["train"], 2, seed=1)
    assert Counter(e["classes"][0] for e in qa) == {a: 2 for a in W.ATTRIBUTES}
    entities = L.few_shot(every("entities")["train"], 2)
    assert all(sum(k in e["classes"] for e in entities) >= 2 for k in L.ENTITY_TYPES)


def test_bad_input_names_the_choices():
    with pytest.raises(ValueError, match="'sector', 'entities', 'extractive_qa'"):
        L.task(WORLD, "sentiment")
    with pytest.raises(ValueError, match="'train', 'validation', 'test'"):
        L.task(WORLD, "sector", "dev")
    with pytest.raises(ValueError, match="k must"):
        L.few_shot([], 0)

import pytest

from labkit import domain as D
from labkit import world as W

WORLD = W.make_world(0)


def test_same_seed_same_herbal():
    assert D.domain_text(WORLD) == D.domain_text(W.make_world(0))
    assert D.herbs(WORLD) != D.herbs(W.make_world(1))


def test_another_herbal_beside_the_same_people():
    assert D.herbs(WORLD, herbal=1) == D.herbs(W.make_world(1)) != D.herbs(WORLD)
    assert D.domain_text(WORLD, herbal=1) == D.domain_text(W.make_world(1))
    assert D.domain_task(WORLD, "test", herbal=1) == D.domain_task(W.make_world(1), "test")
    assert D.domain_task(WORLD, "test", herbal=0) == D.domain_task(WORLD, "test")


def test_task_splits_by_herb():
    tasks = {s: D.domain_task(WORLD, s) for s in D.SPLITS}
    herbs = {s: {q["herb"] for q in t} for s, t in tasks.items()}
    assert [len(herbs[s]) for s in D.SPLITS] == [24, 8, 8]
    assert not herbs["train"] & herbs["validation"] and not herbs["train"] & herbs["test"]
    assert not herbs["validation"] & herbs["test"]


def test_every_answer_is_stated_in_the_domain_text():
    text = " ".join(D.domain_text(WORLD))
    for split in D.SPLITS:
        for q in D.domain_task(WORLD, split):  # one of that field's sentences says this answer of this herb
            assert any(t.format(h=q["herb"], v=q["answer"]) in text for t in D.TEMPLATES[q["field"]]), q


def test_jargon_is_the_domains_own():
    jargon = set(D.jargon())
    assert jargon and not jargon & set(W.vocabulary_v2())
    text_words = {w for doc in D.domain_text(WORLD) for w in doc.split()}
    assert {h["name"] for h in D.herbs(WORLD)} <= jargon and text_words & jargon
    assert text_words <= set(W.vocabulary_v2()) | jargon


def test_bad_split_names_the_choices():
    with pytest.raises(ValueError, match="'train', 'validation', 'test'"):
        D.domain_task(WORLD, "holdout")

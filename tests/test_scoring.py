import pytest

from labkit import scoring


def test_exact_match_strict_and_lenient():
    assert scoring.exact_match("Fort Ardel", " Fort Ardel ")
    assert not scoring.exact_match("fort ardel", "Fort Ardel")
    assert scoring.exact_match("fort ardel.", "Fort Ardel", strict=False)
    assert scoring.exact_match("Fort Ardel, a town", "Fort Ardel", strict=False)  # runs on after the answer
    assert not scoring.exact_match("Fort Ardelia", "Fort Ardel", strict=False)  # not a word boundary
    assert not scoring.exact_match("Fort Brisk", "Fort Ardel", strict=False)


def test_accuracy():
    assert scoring.accuracy([True, False, True, True]) == 0.75
    assert scoring.accuracy([]) == 0.0


def test_token_f1_as_squad():
    assert scoring.token_f1("the Fort Ardel", "Fort Ardel") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert scoring.token_f1("Fort Ardel", "Fort Ardel") == 1.0
    assert scoring.token_f1("Brisk", "Fort Ardel") == 0.0
    assert scoring.token_f1("", "") == 1.0 and scoring.token_f1("x", "") == 0.0


def test_span_f1():
    gold = [(0, 2, "PERSON"), (5, 6, "PLACE")]
    assert scoring.span_f1(gold, gold) == 1.0
    assert scoring.span_f1([(0, 2, "PERSON")], gold) == pytest.approx(2 / 3)
    assert scoring.span_f1([(0, 2, "PLACE")], gold) == 0.0  # the label must match too
    assert scoring.span_f1([], []) == 1.0


def test_field_accuracy():
    s = scoring.field_accuracy([{"city": "a", "year": "1"}, {"city": "b", "year": "2"}],
                               [{"city": "a", "year": "1"}, {"city": "b", "year": "3"}])
    assert s == {"field_accuracy": 0.75, "record_exact": 0.5}


def test_set_f1():
    assert scoring.set_f1({"a", "b"}, {"a", "b"}) == 1.0
    assert scoring.set_f1({"a"}, {"a", "b"}) == pytest.approx(2 / 3)
    assert scoring.set_f1(set(), {"a"}) == 0.0 and scoring.set_f1([], []) == 1.0


def test_macro_f1_averages_the_classes():
    # a: F1 2/3, b: F1 0.8 (scikit-learn's f1_score(average="macro") gives the same)
    assert scoring.macro_f1(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == pytest.approx((2 / 3 + 0.8) / 2)
    # always the majority class: accuracy 0.75, but class a scores 0
    assert scoring.macro_f1(["b"] * 4, ["a", "b", "b", "b"]) == pytest.approx((0 + 6 / 7) / 2)
    # a written label that is no class is a miss, not a class of its own; an absent class does not count
    assert scoring.macro_f1(["x", "b"], ["a", "b"], classes=["a", "b", "c"]) == pytest.approx(0.5)
    assert scoring.macro_f1(["x", "b"], ["a", "b"]) == pytest.approx(1 / 3)
    assert scoring.macro_f1([], []) == 0.0


def test_bio_entities_read_tags_as_seqeval_does():
    assert scoring.bio_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [(0, 2, "PER"), (3, 4, "LOC")]
    assert scoring.bio_entities(["O", "I-PER", "I-PER"]) == [(1, 3, "PER")]  # an I- with no B- starts one
    assert scoring.bio_entities(["B-PER", "I-LOC", "I-LOC"]) == [(0, 1, "PER"), (1, 3, "LOC")]  # type change
    assert scoring.bio_entities(["B-PER", "B-PER", "I-PER"]) == [(0, 1, "PER"), (1, 3, "PER")]
    assert scoring.bio_entities(["O", "O"]) == [] and scoring.bio_entities([]) == []


def test_entity_f1_is_micro_averaged_over_the_corpus():
    # seqeval's README example: f1_score(y_true, y_pred) == 0.50
    y_true = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    y_pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    assert scoring.entity_f1(y_pred, y_true) == pytest.approx(0.5)
    # every entity counts once: 3 of 3 then 0 of 1 is 2*3/(3+4), not the mean of 1.0 and 0.0
    three = ["B-PER", "O", "B-LOC", "O", "B-ORG"]
    assert scoring.entity_f1([three, ["O", "O"]], [three, ["B-PER", "O"]]) == pytest.approx(6 / 7)
    # the same span in another sentence is another entity
    assert scoring.entity_f1([["B-PER"], ["O"]], [["O"], ["B-PER"]]) == 0.0
    assert scoring.entity_f1([["O"]], [["O"]]) == 1.0  # nothing to find, nothing found
    with pytest.raises(ValueError, match="1 predicted tag sequences for 2 references"):
        scoring.entity_f1([["O"]], [["O"], ["O"]])

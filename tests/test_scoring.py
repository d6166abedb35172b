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

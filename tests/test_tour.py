from labkit import tour
from labkit import world as W


def test_report_scores_each_fact(base):
    model, tok = base
    person = W.make_world(0).qa_seen[0]
    rows = tour.person_report(model, tok, person)
    assert [r["attribute"] for r in rows] == list(W.ATTRIBUTES)
    assert all(r["truth"] == person.facts[r["attribute"]] for r in rows)
    assert tour.facts_right(rows) == sum(r["model"] == r["truth"] for r in rows)
    text = tour.format_report(person, rows)
    assert text.startswith(f"{person.name}: {tour.facts_right(rows)}/6 facts recalled")


def test_facts_right_counts_only_right_rows():
    assert tour.facts_right([{"right": True}, {"right": False}, {"right": True}]) == 2

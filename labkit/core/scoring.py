"""Scoring: pure functions from predictions and references to numbers (no model, no torch: core layer).

Exact match (strict, or lenient: case and punctuation ignored, the answer may run on), token F1
(SQuAD's), accuracy (a share of hits), set F1 (facts, names) and span F1 (entities as (start, end,
label) spans), and the record task's field accuracy. Every metric in the course is one of these. Introduced in notebook
01_full_finetuning; macro-F1 over classes and entity-level F1 over BIO tags (seqeval's conventions) in
09_task_heads.
"""

from __future__ import annotations

import re
from collections import Counter


def normalize(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces."""
    return " ".join(re.sub(r"[^\w ]", " ", text.lower()).split())


def exact_match(prediction: str, reference: str, strict: bool = True) -> bool:
    """``strict``: the same text (outer spaces ignored). Lenient: after ``normalize``, the
    prediction starts with the reference (hub models add punctuation or run on after an answer)."""
    if strict:
        return prediction.strip() == reference.strip()
    p, r = normalize(prediction), normalize(reference)
    return p == r or p.startswith(r + " ")


def accuracy(hits) -> float:
    """The share of true values (0.0 for none)."""
    hits = list(hits)
    return sum(bool(h) for h in hits) / len(hits) if hits else 0.0


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall after ``normalize`` (as SQuAD scores answers)."""
    p, r = normalize(prediction).split(), normalize(reference).split()
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def set_f1(predicted, reference) -> float:
    """F1 of two sets of items (facts, names, spans): exact items must match; two empty sets agree."""
    p, r = set(predicted), set(reference)
    if not p or not r:
        return float(p == r)
    hits = len(p & r)
    return 0.0 if hits == 0 else 2 * hits / (len(p) + len(r))


def span_f1(predicted: list[tuple], reference: list[tuple]) -> float:
    """F1 of exactly matching spans ((start, end, label) tuples), as CoNLL scores entities."""
    return set_f1(predicted, reference)


def macro_f1(predicted: list, reference: list, classes=None) -> float:
    """The mean over classes of each class's F1 (scikit-learn's ``average="macro"``: the classes are those
    in either list; a class never predicted scores 0). Unlike accuracy it does not let a majority class
    hide a class the model never gets. ``classes``: the only ones that count, for when a prediction can
    fall outside them (a written label that is no class): it is then a miss, not a class of its own."""
    present = set(predicted) | set(reference)
    classes = present if classes is None else present & set(classes)
    if not classes:
        return 0.0
    per_class = [set_f1({i for i, p in enumerate(predicted) if p == c}, {i for i, r in enumerate(reference) if r == c})
                 for c in classes]
    return sum(per_class) / len(per_class)


def bio_entities(tags: list[str]) -> list[tuple[int, int, str]]:
    """The entities in a BIO tag sequence as (start, end, type) word spans, ``end`` exclusive, read as
    seqeval (and CoNLL's conlleval) read them: an entity ends at O, at B- or where the type changes, and
    an I- that does not continue an entity of its type starts one (lenient, not seqeval's strict mode)."""
    out, start, kind = [], None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, t = tag.partition("-")
        if start is not None and (prefix in ("O", "B") or t != kind):  # the open entity ends here
            out.append((start, i, kind))
            start = None
        if prefix in ("B", "I") and start is None:
            start, kind = i, t
    return out


def entity_f1(predicted: list[list[str]], reference: list[list[str]]) -> float:
    """Entity-level F1 over a corpus of BIO-tagged sentences, as seqeval's ``f1_score`` computes it: micro
    averaged (every entity of every sentence counts once), an entity right only when its start, end and
    type all are (``bio_entities``). A corpus with no entities on either side scores 1.0 (``set_f1``;
    seqeval would say 0.0 with a warning)."""
    if len(predicted) != len(reference):
        raise ValueError(f"{len(predicted)} predicted tag sequences for {len(reference)} references.")
    return set_f1(*({(n, *e) for n, tags in enumerate(side) for e in bio_entities(tags)}
                    for side in (predicted, reference)))


def field_accuracy(predicted: list[dict], reference: list[dict]) -> dict:
    """Record scores: the share of reference fields predicted right, and of records all right."""
    fields, exact = [], []
    for p, g in zip(predicted, reference):
        hits = [p.get(k) == v for k, v in g.items()]
        fields += hits
        exact.append(all(hits))
    return {"field_accuracy": accuracy(fields), "record_exact": accuracy(exact)}

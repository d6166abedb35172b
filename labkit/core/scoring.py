"""Scoring: pure functions from predictions and references to numbers (no model, no torch: core layer).

Exact match (strict, or lenient: case and punctuation ignored, the answer may run on), token F1
(SQuAD's), accuracy (a share of hits), set F1 (facts, names) and span F1 (entities as (start, end,
label) spans), and the record task's field accuracy. Every metric in the course is one of these. Introduced in notebook
01_full_finetuning.
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


def field_accuracy(predicted: list[dict], reference: list[dict]) -> dict:
    """Record scores: the share of reference fields predicted right, and of records all right."""
    fields, exact = [], []
    for p, g in zip(predicted, reference):
        hits = [p.get(k) == v for k, v in g.items()]
        fields += hits
        exact.append(all(hits))
    return {"field_accuracy": accuracy(fields), "record_exact": accuracy(exact)}

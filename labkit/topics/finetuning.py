"""Fine-tuning tasks with exact metrics.

The record task: read a passage about a person and write their record, ``city = ... ; year =
... ; ...``. The base model has never seen the record format, so it must be learned; people are
fresh, so the skill (not a memorised answer) is what the held-out metric measures.
Introduced in notebook 01_full_finetuning.
"""

from __future__ import annotations

import random

from labkit.core import world as W
from labkit.core.scoring import field_accuracy
from labkit.engine.evaluate import generate


def record_pairs(world: W.World, n: int, split: str, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (prompt, record) pairs about freshly sampled people (never people of the world);
    each split ('train', 'eval', ...) draws its people from its own seeded stream."""
    rng = random.Random(f"record-{split}-{seed}-{world.seed}")
    taken = set(world.taken)
    people = [W.sample_person(rng, taken) for _ in range(n)]
    return [(W.record_prompt(p, rng), W.record_answer(p)) for p in people]


def score_records(predictions: list[str], answers: list[str]) -> dict:
    """Field accuracy (each attribute value right) and record exact match (all right)."""
    return field_accuracy([W.parse_record(p) for p in predictions], [W.parse_record(a) for a in answers])


def record_metric(model, tokenizer, pairs, batch_size: int = 32) -> dict:
    """Generate a record for every prompt and score it against the truth."""
    preds = generate(model, tokenizer, [p for p, _ in pairs], max_new_tokens=48,
                     batch_size=batch_size)
    return score_records(preds, [a for _, a in pairs]) | {"predictions": preds}

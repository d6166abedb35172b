"""Fine-tuning tasks with exact metrics.

The record task: read a passage about a person and write their record, ``city = ... ; year =
... ; ...``. The base model has never seen the record format, so it must be learned; people are
fresh, so the skill (not a memorised answer) is what the held-out metric measures.
Introduced in notebook 01_full_finetuning.
"""

from __future__ import annotations

import math
import random

from transformers import TrainerCallback

from labkit.core import world as W
from labkit.core.scoring import accuracy, field_accuracy
from labkit.engine.evaluate import generate
from labkit.engine.memory import held_bytes

# The course's one definition of "learned the task" (notebooks 01, 02 and 03): field accuracy on never-seen
# people of at least 0.95, at most one field in twenty wrong. It sits above 5/6 on purpose: a model that
# writes the format but gets one of the six fields wrong on every record (0.83) has not learned the task.
LEARNED = 0.95

# What notebook 01 writes to results.json (checked by records.save_results): each dict is one finding,
# as returned by the function named beside it.
RESULTS = {"profile": str, "seed": int, "parameters": int, "train_seconds": float,
           "gain": dict,       # metric_gain: the task metric before and after fine-tuning
           "one_step": dict,   # one_step_gaps: the hand-written loss and AdamW step against the library's
           "memory": dict,     # memory_check: the 16 bytes/param bill against the tensors held, and the peak
           "overfit": dict}    # overfit_summary: the overfitting run and early stopping


def record_pairs(world: W.World, n: int, split: str, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (prompt, record) pairs about freshly sampled people (never people of the world);
    each split ('train', 'eval', ...) draws its people from its own seeded stream."""
    rng = random.Random(f"record-{split}-{seed}-{world.seed}")
    taken = set(world.taken)
    people = [W.sample_person(rng, taken) for _ in range(n)]
    return [(W.record_prompt(p, rng), W.record_answer(p)) for p in people]


def _parts(record: str) -> list[str]:
    return [" ".join(part.split()) for part in record.rstrip(" .").split(";")]


def written_fields(record: str) -> dict:
    """{attribute: value} of a written record, read by marker word like ``world.parse_record``; an
    attribute written twice with different values maps to None, so neither value counts as right."""
    fields = {}
    for part in _parts(record):
        for attribute, value in W.parse_record(part).items():
            fields[attribute] = value if fields.get(attribute, value) == value else None
    return fields


def score_records(predictions: list[str], answers: list[str]) -> dict:
    """Field accuracy: the share of true fields the prediction states, and states right (a field
    written twice with two values is wrong). Record exact match: the prediction is the true record
    part for part - six parts in the fixed order, none missing, repeated or extra."""
    fields = field_accuracy([written_fields(p) for p in predictions], [W.parse_record(a) for a in answers])
    exact = [_parts(p) == _parts(a) for p, a in zip(predictions, answers)]
    return {"field_accuracy": fields["field_accuracy"], "record_exact": accuracy(exact)}


def record_metric(model, tokenizer, pairs, batch_size: int = 32) -> dict:
    """Generate a record for every prompt and score it against the truth. Generation stops a few
    tokens past the longest true record (a record runs ~19 tokens; the untrained model never stops)."""
    longest = max(len(tokenizer(f" {a}{W.END}", add_special_tokens=False).input_ids) for _, a in pairs)
    preds = generate(model, tokenizer, [p for p, _ in pairs], max_new_tokens=longest + 8,
                     batch_size=batch_size)
    return score_records(preds, [a for _, a in pairs]) | {"predictions": preds}


# ---------------------------------------------------------------- findings (pure: measured rows in, numbers out)

def metric_gain(before: dict, after: dict, keys=("field_accuracy", "record_exact")) -> dict:
    """For each metric: its value before and after fine-tuning, and the gain."""
    return {k: {"before": before[k], "after": after[k], "gain": after[k] - before[k]} for k in keys}


def update_norm(tensors) -> float:
    """The Euclidean norm of a list of tensors taken as one long vector (a model-wide update)."""
    import torch

    return math.sqrt(sum(float((torch.as_tensor(t, dtype=torch.float64) ** 2).sum()) for t in tensors))


def one_step_gaps(loss_by_hand: float, loss_library: float, hand_update, library_update) -> dict:
    """The hand-written loss and optimizer step against the library's: the absolute loss gap, the size
    of the library's update (the change of every weight after one step) and the distance between the
    two updates relative to that size."""
    import torch

    if len(hand_update) != len(library_update):
        raise ValueError(f"The two updates cover {len(hand_update)} and {len(library_update)} tensors: "
                         "compare the same model's parameters.")
    size = update_norm(library_update)
    diff = [torch.as_tensor(h, dtype=torch.float64) - torch.as_tensor(g, dtype=torch.float64)
            for h, g in zip(hand_update, library_update)]
    return {"loss_by_hand": float(loss_by_hand), "loss_library": float(loss_library),
            "loss_gap": abs(float(loss_by_hand) - float(loss_library)), "update_size": size,
            "update_gap": update_norm(diff) / size if size else math.inf}


class HeldBytes(TrainerCallback):
    """Reads ``held_bytes`` right after each optimizer step (gradients not yet zeroed, AdamW states
    made) and keeps the largest: ``held`` = {'gradients': bytes, 'optimizer': bytes}."""

    def __init__(self):
        self.held = {"gradients": 0, "optimizer": 0}

    def on_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
        now = held_bytes(model, optimizer)
        self.held = {k: max(v, now[k]) for k, v in self.held.items()}


def memory_check(bill: dict, held: dict, baseline_bytes: int, peak_bytes: int) -> dict:
    """The full fine-tuning bill (``memory.full_finetuning_bytes``) against the gradient and optimizer
    bytes training really held (``held_bytes``), and the measured peak's growth over the memory in use
    before training, as a share of those held gradients and states."""
    held_total = held["gradients"] + held["optimizer"]
    growth = peak_bytes - baseline_bytes
    return {"bill": dict(bill), "held": dict(held),
            "gradients_gap": bill["gradients"] - held["gradients"],
            "optimizer_gap": bill["optimizer"] - held["optimizer"],
            "bill_matches_held": bill["gradients"] == held["gradients"] and bill["optimizer"] == held["optimizer"],
            "baseline_bytes": baseline_bytes, "peak_bytes": peak_bytes, "growth_bytes": growth,
            "growth_over_held": growth / held_total if held_total else math.inf}


def overfit_summary(val_losses, steps_taken: int, max_steps: int, restored_loss: float) -> dict:
    """The overfitting run from its validation curve (``[(step, loss), ...]``): the best point (the first
    one, on a tie, as the Trainer keeps it), the first and last points, whether training stopped before
    its planned ``max_steps``, and the restored model's validation loss against the best."""
    if not val_losses:
        raise ValueError("No validation losses: the overfitting run must evaluate (eval_every='epoch').")
    val = [(int(s), float(v)) for s, v in val_losses]
    best_step, best_loss = min(val, key=lambda sv: sv[1])
    return {"val_losses": val, "first_loss": val[0][1], "best_step": best_step, "best_loss": best_loss,
            "last_step": val[-1][0], "last_loss": val[-1][1], "rise_after_best": val[-1][1] - best_loss,
            "steps_taken": steps_taken, "max_steps": max_steps, "stopped_early": steps_taken < max_steps,
            "restored_loss": float(restored_loss), "restored_gap": abs(float(restored_loss) - best_loss)}

"""Catastrophic forgetting: capabilities measured during fine-tuning, and the choices that
limit it (learning rate, LoRA, training only the top layers, replay of old data).
Introduced in notebook 02_forgetting.
"""

from __future__ import annotations

import random

from labkit.core import world as W
from labkit.engine import capabilities as C
from labkit.engine.callbacks import Probe
from labkit.engine.evaluate import accuracy, perplexity
from labkit.topics.finetuning import record_metric


class CapabilityProbe(Probe):
    """Fact recall, reading, perplexity and the target task on small fixed probes, at step 0 and
    every ``every`` steps (see ``labkit.callbacks.Probe``)."""

    def __init__(self, tokenizer, world: W.World, task_pairs, every: int, n_people: int = 20,
                 initial: dict | None = None):
        super().__init__(every, initial)
        self.tok = tokenizer
        self.recall = C.recall_pairs(world.qa_seen[:n_people])
        self.reading, _ = C.reading_pairs(world, 6 * n_people // 2)
        self.texts = C.heldout_texts(world, n_people)
        self.task = task_pairs

    def metrics(self, model) -> dict:
        return {"qa_recall": accuracy(model, self.tok, self.recall),
                "reading": accuracy(model, self.tok, self.reading),
                "perplexity": perplexity(model, self.tok, self.texts),
                "task": record_metric(model, self.tok, self.task)["field_accuracy"]}


def train_top_layers(model, n_layers: int):
    """Freeze everything but the last ``n_layers`` transformer blocks and the final norm."""
    for p in model.parameters():
        p.requires_grad = False
    blocks = model.model.layers
    for block in blocks[len(blocks) - n_layers:]:
        for p in block.parameters():
            p.requires_grad = True
    for p in model.model.norm.parameters():
        p.requires_grad = True
    return model


def replay_pairs(world: W.World, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Old data to mix in: pretraining-world questions and biography sentences as completions."""
    rng = random.Random(f"replay-{seed}-{world.seed}")
    pairs = []
    for _ in range(n):
        person = rng.choice(world.qa_seen)
        attribute = rng.choice(W.ATTRIBUTES)
        if rng.random() < 0.5:
            pairs.append(W.qa_pair(person, attribute))
        else:
            pairs.append(W.bio_prompt(person, attribute, rng.randrange(3)))
    return pairs


def forgotten_facts(before_model, after_model, tokenizer, people: list[W.Person]) -> list[dict]:
    """Facts the first model answered right and the second answers wrong (with both answers)."""
    from labkit.engine.evaluate import exact_match, generate

    pairs = C.recall_pairs(people)
    was = exact_match(before_model, tokenizer, pairs)
    now = exact_match(after_model, tokenizer, pairs)
    lost = [pair for pair, a, b in zip(pairs, was, now) if a and not b]
    prompts = [p for p, _ in lost]
    old = generate(before_model, tokenizer, prompts, max_new_tokens=6)
    new = generate(after_model, tokenizer, prompts, max_new_tokens=6)
    return [{"question": p.removeprefix("Q : ").removesuffix(" A :"), "truth": t, "before": o, "after": n}
            for (p, t), o, n in zip(lost, old, new)]

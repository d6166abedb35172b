"""Catastrophic forgetting: capabilities measured during fine-tuning, and the choices that
limit it (learning rate, LoRA, training only the top layers, replay of old data).
Introduced in notebook 02_forgetting.
"""

from __future__ import annotations

import hashlib
import random

import torch

from labkit.core import world as W
from labkit.engine import capabilities as C
from labkit.engine.callbacks import Probe
from labkit.engine.card import PROBE as CARD_PROBE
from labkit.engine.evaluate import accuracy, perplexity
from labkit.topics.finetuning import LEARNED, record_metric

# The capabilities this notebook follows, measured before fine-tuning and held against the model card.
CARD_KEYS = ("qa_recall", "bio_recall", "reading", "perplexity")

# Recall "never went back up" along a run when no probe point is above the point before it by more
# than this: 0.05 is 6 of the 120 questions of the default probe (20 people), the size of the
# wobble between probe points once recall has collapsed; a real recovery is larger.
RISE_TOLERANCE = 0.05
# Only runs that lost more than this much recall are judged for steadiness (a flat curve is trivially steady).
LOST_SOME = 0.1
# A run "kept" in-context reading when it lost less than this share of it.
READING_KEPT = 0.5
# The gentle full fine-tune "kept the facts as well as LoRA" when it lost at most this much more
# recall than the least-forgetting LoRA run.
AS_WELL_AS = 0.05

# What notebook 02 writes to results.json (checked by records.save_results).
RESULTS = {
    "profile": str, "seed": int, "before": dict, "card": dict, "runs": dict,
    "recall_lost": dict, "reading_lost": dict, "perplexity_before": float, "perplexity_after": dict,
    "task_gained": dict, "final_task": dict, "learned_at": float, "learned": dict,
    "high_lr_run": str, "low_lr_run": str, "replay_run": str, "top_run": str, "lora_runs": list,
    "lora_verdicts": dict, "gentle_kept_facts": bool, "gentle_verdict": str, "reading_kept": list,
    "replay_recall_saved": float,
    "forgetting_monotone_in_steps": dict, "rise_tolerance": float, "forgotten_examples": list,
}


def before_capabilities(model, tokenizer, world: W.World) -> dict:
    """``CARD_KEYS`` measured with the model card's own probes (the same people and passages, the
    card's sizes), so they can be held against the card's numbers. The card's other probes (people
    never asked about, passages with distractors) are left out: they take most of the card's time
    and this notebook follows none of them."""
    n, n_reading = CARD_PROBE["n_people"], CARD_PROBE["n_reading"]
    return {"qa_recall": accuracy(model, tokenizer, C.recall_pairs(world.qa_seen[:n])),
            "bio_recall": accuracy(model, tokenizer, C.bio_pairs(world.pretrain_people[:n])),
            "reading": accuracy(model, tokenizer, C.reading_pairs(world, n_reading)[0]),
            "perplexity": perplexity(model, tokenizer, C.heldout_texts(world, n))}


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
    """Freeze everything but the last ``n_layers`` transformer blocks and the final norm: notebook 09's
    ``labkit.topics.task_heads.freeze(model, n_layers)`` (one definition for both notebooks; the course
    model's lm_head is tied to the frozen embeddings, so it stays frozen). Returns the model."""
    from labkit.topics.task_heads import freeze

    freeze(model, n_layers)
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


def mix_replay(new: list, old: list, fraction: float) -> list:
    """Replay: the fine-tuning examples with ``int(fraction * len(new))`` of them replaced by the
    first examples of ``old`` (same length, so the same step budget buys fewer new examples)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"The replay fraction is a share in [0, 1], got {fraction!r}.")
    n = int(fraction * len(new))
    if len(old) < n:
        raise ValueError(f"Replay needs {n} old examples, got {len(old)}.")
    return new[n:] + old[:n]


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


def state_hash(model) -> str:
    """sha256 of a model's weights: every tensor of its state dict, in name order, as raw bytes
    (with its name, dtype and shape). Equal hashes: bit-identical weights."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def steady(curve: list[dict], key: str = "qa_recall", tolerance: float = RISE_TOLERANCE) -> bool:
    """True when ``key`` never rises by more than ``tolerance`` from one probe point to the next."""
    return all(b[key] <= a[key] + tolerance for a, b in zip(curve, curve[1:]))


def summarize(runs: dict, learned_at: float = LEARNED, tolerance: float = RISE_TOLERANCE) -> dict:
    """Per run (``runs[name]['curve']``: probe rows from step 0 to the end), what it learned and lost:
    recall_lost and reading_lost (first row minus last), perplexity_after, final_task, task_gained,
    learned (final task >= ``learned_at``, by default the course's definition ``finetuning.LEARNED``), and,
    for runs that lost more than ``LOST_SOME`` recall, whether recall fell steadily (``steady`` within
    ``tolerance``)."""
    if not 0 <= learned_at <= 1:
        raise ValueError(f"learned_at is a field accuracy in [0, 1], got {learned_at!r}.")
    if not runs:
        raise ValueError("No runs to summarize.")
    first = {n: r["curve"][0] for n, r in runs.items()}
    last = {n: r["curve"][-1] for n, r in runs.items()}
    lost = {n: first[n]["qa_recall"] - last[n]["qa_recall"] for n in runs}
    final = {n: last[n]["task"] for n in runs}
    return {
        "recall_lost": lost,
        "reading_lost": {n: first[n]["reading"] - last[n]["reading"] for n in runs},
        "perplexity_before": first[next(iter(runs))]["perplexity"],
        "perplexity_after": {n: last[n]["perplexity"] for n in runs},
        "final_task": final,
        "task_gained": {n: final[n] - first[n]["task"] for n in runs},
        "learned_at": learned_at,
        "learned": {n: final[n] >= learned_at for n in runs},
        "forgetting_monotone_in_steps": {n: steady(r["curve"], "qa_recall", tolerance)
                                         for n, r in runs.items() if lost[n] > LOST_SOME},
        "rise_tolerance": tolerance,
    }


def lora_verdict(summary: dict, run: str, reference: str) -> str:
    """How a LoRA run compares with full fine-tuning (``reference``) at the same learning rate."""
    final, lost = summary["final_task"], summary["recall_lost"]
    if lost[run] < lost[reference]:
        return "learned less and forgot less" if final[run] < final[reference] else "forgot less"
    return "forgot as much or more"


def kept_facts_as_lora(summary: dict, low: str, lora: list[str]) -> bool:
    """Whether run ``low`` lost at most ``AS_WELL_AS`` more fact recall than the least-forgetting of the
    ``lora`` runs (False without LoRA runs)."""
    lost = summary["recall_lost"]
    return bool(lora) and lost[low] <= min(lost[n] for n in lora) + AS_WELL_AS


def gentle_verdict(summary: dict, low: str, lora: list[str]) -> str:
    """What the low-lr full run (``low``) did, as the notebook's sentence says it: whether it learned the
    task (``summary['learned']``), and whether it lost at most ``AS_WELL_AS`` more recall than the
    least-forgetting LoRA run (not judged without LoRA runs). The two are stated apart: a run that did
    not learn the task may still have kept the facts."""
    learned = summary["learned"][low]
    if not lora:
        return "learned the task" if learned else "did not learn the task"
    kept = kept_facts_as_lora(summary, low, lora)
    if learned:
        return ("learned the task and kept the facts as well as the best LoRA run" if kept else
                "learned the task but did not keep the facts as well as the best LoRA run")
    return ("did not learn the task, though it kept the facts as well as the best LoRA run" if kept else
            "neither learned the task nor kept the facts as well as the best LoRA run")


def compare(summary: dict, *, high: str, low: str, replay: str, lora: list[str]) -> dict:
    """The comparisons the notebook states, from a ``summarize`` result: each LoRA run's verdict
    against full fine-tuning at the high learning rate; whether the low-lr full run learned the task
    and lost at most ``AS_WELL_AS`` more recall than the best LoRA run (``gentle_kept_facts``: both;
    ``gentle_verdict``: the sentence saying each); the runs that kept most in-context reading; and the
    recall replay saved (lost without replay minus lost with it)."""
    lost = summary["recall_lost"]
    return {
        "lora_verdicts": {n: lora_verdict(summary, n, high) for n in lora},
        "gentle_kept_facts": bool(summary["learned"][low] and kept_facts_as_lora(summary, low, lora)),
        "gentle_verdict": gentle_verdict(summary, low, lora),
        "reading_kept": [n for n, v in summary["reading_lost"].items() if v < READING_KEPT],
        "replay_recall_saved": lost[high] - lost[replay],
    }


def steadiness_sentence(monotone: dict, tolerance: float) -> str:
    """The notebook's line on whether recall fell steadily, naming the tolerance it was judged with."""
    steady_runs = ", ".join(n for n, m in monotone.items() if m) or "none"
    rose = ", ".join(n for n, m in monotone.items() if not m) or "none"
    return (f"- Recall fell steadily with steps (it never went back up by more than {tolerance:.2f} from one "
            f"probe point to the next) in: {steady_runs}; it went back up by more than {tolerance:.2f} at some "
            f"point in: {rose}.")

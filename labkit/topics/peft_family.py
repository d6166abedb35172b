"""Notebook 06_peft_family: the PEFT family on one task with one step budget.

The task: write a person's record from memory ("record of NAME :" -> "Fort Galt ; year 1970 ; ...")
about people the base model knows (it answers questions about them, but has never written a
record). Every method is trained at a few learning rates for the same steps; the rate with the best
validation score is kept, and the kept run is scored on other people, on prompts phrased in ways it
never saw, for forgetting (fact recall and reading of people it never trained on), training memory
(counted from the tensors), seconds per step, generation latency and the size of what it saves.

The bottleneck adapter is written in the notebook; ``insert_after_mlp`` puts it into each block.
Findings are the functions at the end, which take the measured rows. Introduced in notebook
06_peft_family.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import torch

from labkit.core import world as W
from labkit.engine import capabilities as C
from labkit.engine.evaluate import accuracy, generate
from labkit.engine.memory import full_finetuning_bytes, held_bytes, saved_activation_bytes
from labkit.topics.finetuning import score_records

PROMPT = "record of {n} :"
# Phrasings never trained on: the same request in other words of the world's vocabulary.
HELDOUT_PROMPTS = ("Q : what is the record of {n} ? A :", "the record of {n} is")
# Prompt tuning "from vocabulary" starts its virtual tokens as the embeddings of this text.
INIT_TEXT = "record of the person : Fort year master House pastime colour"

RESULTS = {"profile": str, "seed": int, "methods": list, "runs": list, "chosen": dict, "base": dict,
           "reach_full": dict, "prompt_init": dict, "forgetting_order": list, "facts_order": list, "facts_split": dict,
           "memory": dict, "pareto": list, "serving": dict, "adapter_identity_gap": float}


def record_pairs(people: list[W.Person], prompt: str = PROMPT) -> list[tuple[str, str]]:
    """(prompt, record) for each person, the prompt written with ``prompt``."""
    return [(prompt.format(n=p.name), W.record_answer(p)) for p in people]


def split_people(world: W.World, n_train: int, n_val: int, n_test: int, n_probe: int, seed: int = 0) -> dict:
    """Disjoint groups of the people the base model knows (``world.qa_seen``), shuffled by ``seed``:
    'train', 'val' (choosing each method's rate), 'test', and 'probe' (forgetting: never trained on)."""
    sizes = {"train": n_train, "val": n_val, "test": n_test, "probe": n_probe}
    if sum(sizes.values()) > len(world.qa_seen):
        raise ValueError(f"The groups need {sum(sizes.values())} people; the model knows {len(world.qa_seen)}: "
                         "make n_train, n_val, n_test or n_probe smaller.")
    people = list(world.qa_seen)
    random.Random(f"peft-family-{seed}").shuffle(people)
    out, start = {}, 0
    for name, n in sizes.items():
        out[name], start = people[start:start + n], start + n
    return out


# ---------------------------------------------------------------- the bottleneck adapter's socket

class AfterMlp(torch.nn.Module):
    """A block's MLP followed by an adapter on a residual path: ``y + adapter(y)``, y the MLP output."""

    def __init__(self, mlp, adapter):
        super().__init__()
        self.mlp, self.adapter = mlp, adapter

    def forward(self, x):
        y = self.mlp(x)
        return y + self.adapter(y)


def insert_after_mlp(model, make_adapter):
    """Freeze ``model`` and put ``make_adapter(hidden_size)`` after the MLP of every block (in place);
    only the adapters train. Returns the model."""
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.model.layers:
        layer.mlp = AfterMlp(layer.mlp, make_adapter(model.config.hidden_size))
    return model


def max_output_gap(model_a, model_b, input_ids) -> float:
    """Largest absolute difference between two models' logits on ``input_ids`` (0: same function). Each
    model reads the ids on its own device (a Trainer moves the model it trains to the GPU, not its base);
    the logits are compared on the CPU."""
    def logits(model):
        return model(input_ids=input_ids.to(next(model.parameters()).device)).logits.float().cpu()

    with torch.no_grad():
        return float((logits(model_a) - logits(model_b)).abs().max())


# ---------------------------------------------------------------- measurements

def methods_to_run(methods, rates: dict) -> list[str]:
    """The methods to train, in the family's order: ``methods`` (None: every method with rates), with
    full fine-tuning always first (every comparison is against it)."""
    from labkit.core.settings import PEFT_METHODS

    wanted = list(rates) if methods is None else list(methods)
    for m in wanted:
        if m not in PEFT_METHODS:
            raise ValueError(f"Unknown method {m!r}: choose among {', '.join(PEFT_METHODS)}.")
        if m not in rates:
            raise ValueError(f"No learning rates for {m!r}: add it to rates, e.g. rates = {{{m!r}: [1e-3]}}.")
    return [m for m in PEFT_METHODS if m in wanted or m == "full"]


def trainable_snapshot(model) -> dict:
    """Copies of the trainable tensors, to compare after training (see ``largest_change``)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def largest_change(model, snapshot: dict) -> float:
    """Largest absolute change of any trainable value since ``snapshot`` (0.0: nothing trained). Compared
    where the snapshot lies: a Trainer moves the model to the GPU after the snapshot was taken."""
    now = dict(model.named_parameters())
    return max((float((now[n].detach().to(t.device) - t).abs().max()) for n, t in snapshot.items()), default=0.0)


def task_scores(model, tokenizer, people, prompts=(PROMPT,)) -> dict:
    """Record field accuracy and exact match on ``people``, each asked once: person i with
    ``prompts[i % len(prompts)]`` (so several phrasings share the people between them)."""
    pairs = [record_pairs([p], prompts[i % len(prompts)])[0] for i, p in enumerate(people)]
    said = generate(model, tokenizer, [q for q, _ in pairs], max_new_tokens=32, batch_size=64)
    return score_records(said, [a for _, a in pairs])


def capabilities(model, tokenizer, world: W.World, people) -> dict:
    """Fact recall about ``people`` (every attribute asked) and reading (one passage, fresh people),
    both as exact answers in the question-answer format; and ``facts_kept``: the share of the same
    questions whose generated answer starts with the right value, whatever format follows (a model
    that answers in the new task's format but still knows the fact keeps it)."""
    recall = C.recall_pairs(people)
    reading, _ = C.reading_pairs(world, 3 * len(people))
    return {"qa_recall": accuracy(model, tokenizer, recall),
            "facts_kept": accuracy(model, tokenizer, recall, strict=False),
            "reading": accuracy(model, tokenizer, reading)}


def training_bytes(model, optimizer, batch_ids) -> dict:
    """What training holds, counted from tensors (bytes): the frozen and the trainable weights, the
    gradients and optimizer states (after a step), and the activations saved for backward by one
    forward pass over ``batch_ids``."""
    bill = full_finetuning_bytes(model)  # weights, and one gradient per trainable value (freed by now)
    trainable = bill["gradients"]  # the trainable weights take as many bytes as their gradients
    states = held_bytes(model, optimizer)["optimizer"]  # measured, not AdamW's formula
    was_training = model.training
    model.train()
    acts = saved_activation_bytes(model, batch_ids)
    model.train(was_training)
    return {"frozen weights": bill["weights"] - trainable, "trainable weights": trainable, "gradients": trainable,
            "optimizer": states, "activations": acts}


def latency(model, tokenizer, prompts, repeats: int = 3) -> float:
    """Seconds to generate records for ``prompts`` (one batch, greedy): the fastest of ``repeats``
    tries, the one least disturbed by other work on the machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate(model, tokenizer, prompts, max_new_tokens=32, batch_size=len(prompts))
        times.append(time.perf_counter() - start)
    return min(times)


def saved_size(model, method: str) -> int:
    """Bytes on disk of what serving this method needs beside the base model: the adapter file for
    PEFT methods, the trainable tensors (safetensors) for the bottleneck adapter, the whole model
    for full fine-tuning."""
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as d:
        if method == "bottleneck adapter":
            save_file({n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad},
                      f"{d}/adapter.safetensors")
        else:
            model.save_pretrained(d)
        return sum(f.stat().st_size for f in Path(d).iterdir() if f.suffix == ".safetensors")


# ---------------------------------------------------------------- findings (from measured rows)

def choose_rates(rows: list[dict]) -> dict:
    """For each method, its run with the best validation score (field accuracy; ties: the lower
    rate): {method: row}. ``rows``: {'method', 'lr', 'val', ...}."""
    best: dict[str, dict] = {}
    for row in rows:
        held = best.get(row["method"])
        if held is None or (row["val"], -row["lr"]) > (held["val"], -held["lr"]):
            best[row["method"]] = row
    return best


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Methods no other method beats on both counts: {method: (trainable parameters, accuracy)};
    fewer parameters and higher accuracy are better. Sorted by parameters."""
    front = [m for m, (n, a) in points.items()
             if not any((n2 <= n and a2 >= a) and (n2 < n or a2 > a) for m2, (n2, a2) in points.items() if m2 != m)]
    return sorted(front, key=lambda m: points[m][0])


def reach_full(chosen: dict, total_parameters: int, tolerance: float) -> dict:
    """The methods whose test score is within ``tolerance`` of full fine-tuning's (or above it), with
    their trainable share of the model's parameters: {method: share}."""
    full = chosen["full"]["test"]
    return {m: row["trainable"] / total_parameters for m, row in chosen.items()
            if m != "full" and row["test"] >= full - tolerance}


def prompt_init(chosen: dict) -> dict:
    """Prompt tuning from vocabulary against from random vectors, test scores and the difference."""
    vocab, rand = chosen["prompt, vocabulary init"]["test"], chosen["prompt, random init"]["test"]
    return {"vocabulary": vocab, "random": rand, "gain": vocab - rand}


def forgetting_order(chosen: dict, before: dict, key: str = "qa_recall") -> list[tuple[str, float]]:
    """Methods by what they lost of capability ``key`` on the probe people (most first): [(method, loss)]."""
    lost = {m: before[key] - row["after"][key] for m, row in chosen.items()}
    return sorted(lost.items(), key=lambda kv: -kv[1])


def facts_split(chosen: dict, before: dict, tolerance: float = 0.1) -> dict:
    """Methods that kept the facts (lost at most ``tolerance`` of ``facts_kept``) and those that lost
    more: {'kept': [...], 'lost': [...]}, each in the family's order."""
    lost = {m: before["facts_kept"] - row["after"]["facts_kept"] for m, row in chosen.items()}
    return {"kept": [m for m in chosen if lost[m] <= tolerance], "lost": [m for m in chosen if lost[m] > tolerance]}


def memory_savings(chosen: dict, total_parameters: int) -> dict:
    """Per method: trainable share of the parameters against training memory as a share of full
    fine-tuning's, and the share of its memory that the frozen weights and activations take."""
    full = sum(chosen["full"]["bytes"].values())
    out = {}
    for m, row in chosen.items():
        total = sum(row["bytes"].values())
        out[m] = {"parameter_share": row["trainable"] / total_parameters, "memory_share": total / full,
                  "frozen_and_activations": (row["bytes"]["frozen weights"] + row["bytes"]["activations"]) / total}
    return out


# ---------------------------------------------------------------- serving several adapters

def reversed_record(person: W.Person) -> str:
    """A second task for a second adapter: the record with its fields in reverse order."""
    return " ; ".join(person.facts[a] for a in reversed(W.ATTRIBUTES))


def load_adapters(base_model, adapters: dict[str, str]):
    """One PEFT model holding every adapter of ``adapters`` ({name: saved folder}) on one base model."""
    from peft import PeftModel

    (first, path), *rest = adapters.items()
    model = PeftModel.from_pretrained(base_model, path, adapter_name=first)
    for name, path in rest:
        model.load_adapter(path, adapter_name=name)
    return model


def serve(model, tokenizer, requests: list[tuple[str, str]]) -> list[str]:
    """Answer ``requests`` [(adapter name, prompt)] in order, switching ``model``'s active adapter for
    each (one base model in memory, however many adapters)."""
    out = []
    for name, prompt in requests:
        model.set_adapter(name)
        out.extend(generate(model, tokenizer, [prompt], max_new_tokens=32))
    return out

"""What the base model can do, measured against the world's ground truth.

Fact recall (question answering and biography completion about pretraining people), knowledge
extraction for people whose QA was never in pretraining, in-context reading (a passage about a
never-seen person, then a question; with distractor passages for k > 1), and held-out perplexity.
The same probes measure forgetting later. Introduced in notebook 00_tour.
"""

from __future__ import annotations

import random

from labkit.core import instructions as I
from labkit.core import world as W
from labkit.engine.evaluate import answer_checks, exact_match, generate, perplexity


def recall_pairs(people: list[W.Person]) -> list[tuple[str, str]]:
    """Closed-book questions, one per attribute."""
    return [W.qa_pair(p, a) for p in people for a in W.ATTRIBUTES]


def bio_pairs(people: list[W.Person], seed: int = 0) -> list[tuple[str, str]]:
    """Biography-sentence completions (a seeded paraphrase per fact)."""
    rng = random.Random(f"bio-probe-{seed}")
    return [W.bio_prompt(p, a, rng.randrange(3)) for p in people for a in W.ATTRIBUTES]


def reading_pairs(world: W.World, n: int, k: int = 1, seed: int = 0):
    """(pairs, attributes): ``n`` passages about never-seen people (``k`` people per passage, one
    asked about) then one question each. People are fresh, so the answer must be read."""
    rng = random.Random(f"reading-probe-{seed}-{k}")
    taken = set(world.taken)
    pairs, attrs = [], []
    for i in range(n):
        people = [W.sample_person(rng, taken) for _ in range(k)]
        attribute = W.ATTRIBUTES[i % len(W.ATTRIBUTES)]
        pairs += W.reading_example(people, [(rng.choice(people), attribute)], rng)
        attrs.append(attribute)
    return pairs, attrs


def heldout_texts(world: W.World, n: int, seed: int = 0) -> list[str]:
    """Biographies of pretraining people in paraphrase orders drawn from a separate stream."""
    rng = random.Random(f"ppl-probe-{seed}")
    return [W.biography(rng.choice(world.pretrain_people), rng) for _ in range(n)]


def instruction_following(model, tokenizer, world: W.World, n_per_kind: int = 8) -> dict:
    """Zero-shot instruction following: chat-formatted test instructions of every kind (seen and
    held-out), greedy answers scored by ``instructions.score``; the mean per kind and overall."""
    examples = (I.instructions(world, "test", n_per_kind, seed=1)
                + I.instructions(world, "heldout", n_per_kind, seed=1))
    prompts = [tokenizer.apply_chat_template(e["messages"][:1], tokenize=False, add_generation_prompt=True)
               for e in examples]
    answers = generate(model, tokenizer, prompts, max_new_tokens=48, until=None)
    scores = {k: [] for k in I.KINDS}
    for e, a in zip(examples, answers):
        scores[e["kind"]].append(I.score(e, a))
    out = {f"instruct_{k}": _mean(v) for k, v in scores.items()}
    return {"instruct": _mean(out.values()), **out}


def measure(model, tokenizer, world: W.World, n_people: int = 100, n_reading: int = 240,
            reading_k=(1,), instruct: int = 0) -> dict:
    """Every capability as a number in [0, 1] (perplexity excepted); ``stops``: the share of reading
    answers after which end-of-text comes next; ``instruct`` > 0 adds zero-shot instruction following
    on that many examples per kind."""
    seen = world.qa_seen[:n_people]
    out = {
        "qa_recall": _mean(exact_match(model, tokenizer, recall_pairs(seen))),
        "bio_recall": _mean(exact_match(model, tokenizer, bio_pairs(world.pretrain_people[:n_people]))),
        "qa_unseen_extraction": _mean(exact_match(model, tokenizer, recall_pairs(world.qa_unseen[:n_people]))),
        "perplexity": perplexity(model, tokenizer, heldout_texts(world, n_people)),
    }
    for k in reading_k:
        pairs, attrs = reading_pairs(world, n_reading, k)
        checks = answer_checks(model, tokenizer, pairs)
        hits = [right for right, _ in checks]
        out["reading" if k == 1 else f"reading_k{k}"] = _mean(hits)
        if k == 1:
            out["stops"] = _mean(stops for _, stops in checks)
            for a in W.ATTRIBUTES:
                out[f"reading_{a}"] = _mean([h for h, b in zip(hits, attrs) if b == a])
    if instruct:
        out |= instruction_following(model, tokenizer, world, instruct)
    return out


def headline(measured: dict) -> dict:
    """``measured`` without its breakdowns (reading per attribute, instruction following per kind)."""
    parts = {f"reading_{a}" for a in W.ATTRIBUTES} | {f"instruct_{k}" for k in I.KINDS}
    return {k: v for k, v in measured.items() if k not in parts}


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")

"""A second domain with its own jargon: the world's herbal, for domain adaptation.

Herbs with invented names (``HERBS``), each with a part used, a preparation, an ailment it eases
and a place it grows, written as unlabelled herbal entries in several paraphrases (``domain_text``),
plus a small labelled task (``domain_task``: closed-book questions about herbs, split by herb) whose
answers are stated only in that text: a model that never read the herbal cannot know them. The
base model never sees this domain; ``jargon()`` lists the words no other world text uses (herb
names, preparations, ailments), which the world v2 tokenizer does not cover. Pure Python, seeded.

Introduced in notebook 10_domain_adaptation.
"""

from __future__ import annotations

import random

from labkit.core import world as W

HERBS = [p + s for p in ("brin", "quel", "saff", "morr", "thist", "yarl", "skel", "dwim", "glim", "hask")
         for s in ("wort", "bane", "moss", "weed", "bloom", "thorn")]
PARTS = ["root", "leaf", "bark", "flower", "seed", "berry"]
PREPARATIONS = ["tincture", "poultice", "decoction", "salve", "philtre", "tisane"]
AILMENTS = ["marshcough", "greyfever", "stoneache", "wheezel", "frettle", "gallrot", "dimsight", "sorefoot",
            "thrumming", "skelt", "marrowchill", "fenshake"]
FIELDS = ("part", "preparation", "ailment", "place")
TEMPLATES = {
    "part": ["of {h} healers use the {v} .", "{h} is gathered for its {v} .",
             "the part of {h} that heals is the {v} ."],
    "preparation": ["{h} is made into a {v} .", "healers prepare {h} as a {v} .", "the way to take {h} is a {v} ."],
    "ailment": ["{h} eases the {v} .", "healers give {h} against the {v} .", "a dose of {h} settles the {v} ."],
    "place": ["{h} grows near {v} .", "{h} is found around {v} .", "gatherers seek {h} near {v} ."],
}
QUESTIONS = {"part": "which part of {h} do healers use ?", "preparation": "how is {h} prepared ?",
             "ailment": "what does {h} ease ?", "place": "where does {h} grow ?"}
SPLITS = {"train": 0.6, "validation": 0.2, "test": 0.2}  # shares of the herbs


def jargon() -> list[str]:
    """The domain's own words, used by no other world text: every possible herb, preparation, ailment."""
    return sorted(HERBS + PREPARATIONS + AILMENTS)


def words() -> set[str]:
    """The domain's ordinary words (its templates and parts): what the tokenizer does cover."""
    texts = [t for ts in TEMPLATES.values() for t in ts] + list(QUESTIONS.values()) + ["herbal :"]
    return ({w for t in texts for w in t.split() if not w.startswith("{")} | set(PARTS)) - set(jargon())


def herbs(world: W.World, n_herbs: int = 40, herbal: int | None = None) -> list[dict]:
    """The world's herbal: ``n_herbs`` herbs with their facts, drawn from the world's seed, or from ``herbal``
    (the herbal the world of that seed has: another herbal beside the same people, for a seed sweep)."""
    rng = random.Random(f"domain-{world.seed if herbal is None else herbal}")
    return [{"name": h, "part": rng.choice(PARTS), "preparation": rng.choice(PREPARATIONS),
             "ailment": rng.choice(AILMENTS), "place": rng.choice(W.VALUES["city"])}
            for h in rng.sample(HERBS, n_herbs)]


def entry(herb: dict, rng: random.Random) -> str:
    """One herbal entry: a random paraphrase of each fact, sentences shuffled."""
    fields = list(FIELDS)
    rng.shuffle(fields)
    return "herbal : " + " ".join(rng.choice(TEMPLATES[f]).format(h=herb["name"], v=herb[f]) for f in fields)


def domain_text(world: W.World, paraphrases: int = 4, seed: int = 0, herbal: int | None = None) -> list[str]:
    """The unlabelled domain text: ``paraphrases`` entries per herb of ``herbs(world, herbal=herbal)``, in a
    seeded order."""
    rng = random.Random(f"domain-text-{world.seed if herbal is None else herbal}-{seed}")
    docs = [entry(h, rng) for h in herbs(world, herbal=herbal) for _ in range(paraphrases)]
    rng.shuffle(docs)
    return docs


def domain_task(world: W.World, split: str = "train", herbal: int | None = None) -> list[dict]:
    """Closed-book questions about the herbs of ``split`` (``SPLITS``, by herb) of ``herbs(world, herbal=herbal)``,
    one per fact: {question, prompt ('Q : ... A :'), answer, herb, field}; answers are stated only in the herbal."""
    W.choose(split, tuple(SPLITS), "split")
    pool = herbs(world, herbal=herbal)
    cut = [0, round(SPLITS["train"] * len(pool)), round((SPLITS["train"] + SPLITS["validation"]) * len(pool))]
    start, end = dict(zip(SPLITS, zip(cut, cut[1:] + [len(pool)])))[split]
    out = []
    for h in pool[start:end]:
        for f in FIELDS:
            q = QUESTIONS[f].format(h=h["name"])
            out.append({"question": q, "prompt": f"Q : {q} A :", "answer": h[f], "herb": h["name"], "field": f})
    return out

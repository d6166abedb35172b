"""Preferences over the world: responses of graded, known quality, nuisance features that can be
dialled to correlate with the preference label, and a gold reward that scores any text.

A prompt asks for two to four facts about a person from a passage that also describes a distractor
person. Its responses, best first (``GRADES``): every asked fact right; some left out; about half
wrong (hallucinated); or about the wrong person (not following the instruction). ``gold_reward``
reads the facts any text writes (marker values, ``world.find_values``) and scores them against the
world's truth: (right asked facts - wrong facts) / asked, floored at -1; fillers, a stock politeness
phrase and the answer's position never change it. ``pairs`` draws (chosen, rejected) pairs in which
one response carries a nuisance feature (``NUISANCES``: more words, a politeness phrase, the answer
after the filler), on the chosen one with probability ``strength`` (0.5: no link to quality). Training
pairs with a strong link and test pairs without one show a reward model's shortcut; test pairs with
the training link show why the usual held-out accuracy hides it.

Introduced in notebook 08_preference_tuning.
"""

from __future__ import annotations

import random

from labkit.core import world as W

GRADES = ("correct", "incomplete", "hallucinated", "off_instruction")  # best first
NUISANCES = ("length", "politeness", "position")
SPLITS = ("train", "test")
PEOPLE = {"train": 0.8, "test": 0.2}  # the same cut of people as the instructions
NOUNS = {"city": "birthplace", "year": "birth year", "job": "job", "employer": "employer", "hobby": "hobby",
         "colour": "colour"}
ASKS = ["what are the {list} of {n} ?", "tell me the {list} of {n} .", "give the {list} of {n} from the passage ."]
FILLER = ["i read the passage with care .", "here is what it tells .", "these are the facts you asked for ."]
POLITE = "happy to help !"
# Each nuisance as the response settings with the feature on and off (position: same words, answer last).
FEATURE = {"length": ({"filler": 3}, {}), "politeness": ({"polite": True}, {}),
           "position": ({"filler": 2, "answer_last": True}, {"filler": 2})}


def words() -> set[str]:
    """Every whole word the preference generator writes (names and values aside)."""
    texts = ASKS + FILLER + [POLITE] + list(NOUNS.values()) + ["and , ; ."]
    return {w for t in texts for w in t.split() if not w.startswith("{")}


def prompt_spec(person: W.Person, other: W.Person, rng: random.Random) -> dict:
    """A prompt asking for 2-4 facts of ``person`` from a passage about it and ``other``: its text, chat
    messages and truth (all JSON-serialisable; what ``gold_reward`` needs)."""
    asked = sorted(rng.sample(W.ATTRIBUTES, rng.randint(2, 4)), key=W.ATTRIBUTES.index)
    nouns = [NOUNS[a] for a in asked]
    listed = " , ".join(nouns[:-1]) + " and " + nouns[-1]
    people = [person, other] if rng.random() < 0.5 else [other, person]
    prompt = f"{W.passage(people, rng)} {rng.choice(ASKS).format(list=listed, n=person.name)}"
    return {"name": person.name, "asked": asked, "truth": dict(person.facts), "other": dict(other.facts),
            "prompt": prompt, "messages": [{"role": "user", "content": prompt}]}


def render(values: list[str], filler: int = 0, polite: bool = False, answer_last: bool = False) -> str:
    """A response writing ``values``, with ``filler`` fact-free sentences (after the answer, or before
    it when ``answer_last``) and the stock politeness phrase first when ``polite``."""
    answer, pad = [" ; ".join(values) + " ."], FILLER[:filler]
    return " ".join(([POLITE] if polite else []) + (pad + answer if answer_last else answer + pad))


def graded_values(spec: dict, grade: str, rng: random.Random) -> list[str]:
    """The values a response of ``grade`` writes for ``spec``, in asked order."""
    W.choose(grade, GRADES, "grade")
    asked, truth = spec["asked"], spec["truth"]

    def wrong(a, v=None):  # ``v`` if it is wrong, else a random wrong value
        return v if v not in (None, truth[a]) else rng.choice([x for x in W.VALUES[a] if x != truth[a]])

    n = len(asked)
    if grade == "correct":
        return [truth[a] for a in asked]
    if grade == "incomplete":  # 1..n-1 right facts, nothing wrong
        kept = set(rng.sample(asked, rng.randint(1, n - 1)))
        return [truth[a] for a in asked if a in kept]
    if grade == "hallucinated":  # every asked fact written, at least half of them wrong
        bad = set(rng.sample(asked, rng.randint((n + 1) // 2, n - 1)))
        return [wrong(a) if a in bad else truth[a] for a in asked]
    return [wrong(a, spec["other"][a]) for a in asked]  # off_instruction: the distractor's facts


def responses(spec: dict, rng: random.Random, **feature) -> list[dict]:
    """One response per grade, best first: {grade, text}; ``feature`` goes to ``render``."""
    return [{"grade": g, "text": render(graded_values(spec, g, rng), **feature)} for g in GRADES]


def gold_reward(prompt_spec: dict, response_text: str) -> float:
    """The world's verdict on any text: (asked facts written right - distinct wrong values about the
    person) / facts asked, floored at -1. 1.0: everything asked, nothing wrong."""
    found, truth = W.find_values(response_text), prompt_spec["truth"]
    right = sum(truth[a] in found.get(a, ()) for a in prompt_spec["asked"])
    wrong = sum(len({v for v in found.get(a, ()) if v != truth[a]}) for a in W.ATTRIBUTES)
    return max(-1.0, (right - wrong) / len(prompt_spec["asked"]))


def pairs(world: W.World, split: str = "train", nuisance: str = "length", strength: float = 0.5,
          n: int = 200, seed: int = 0) -> list[dict]:
    """``n`` preference pairs (TRL's conversational prompt/chosen/rejected, plus spec and grades): two
    different grades of one prompt, the better chosen; one of the two carries ``nuisance``, on the chosen
    one with probability ``strength`` (0.5: no link; people differ between the splits)."""
    W.choose(split, SPLITS, "split")
    on, off = FEATURE[W.choose(nuisance, NUISANCES, "nuisance")]
    p_on = W.share(strength, "strength")
    pool = W.split_people(world, PEOPLE)[split]
    rng = random.Random(f"preferences-{world.seed}-{split}-{nuisance}-{seed}")
    out = []
    for _ in range(n):
        person, other = rng.sample(pool, 2)
        spec = prompt_spec(person, other, rng)
        best, worse = sorted(rng.sample(range(len(GRADES)), 2))
        feature_on_chosen = rng.random() < p_on
        texts = [render(graded_values(spec, GRADES[g], rng), **(on if (g == best) == feature_on_chosen else off))
                 for g in (best, worse)]
        out.append({"prompt": spec["messages"], "chosen": [{"role": "assistant", "content": texts[0]}],
                    "rejected": [{"role": "assistant", "content": texts[1]}], "spec": spec,
                    "chosen_grade": GRADES[best], "rejected_grade": GRADES[worse],
                    "feature_on_chosen": feature_on_chosen})
    return out


def prompts(world: W.World, split: str = "train", n: int = 200, seed: int = 0) -> list[dict]:
    """``n`` prompt specs (``prompt_spec``) about ``split``'s people: what a policy answers in RL and in
    evaluation."""
    pool = W.split_people(world, PEOPLE)[W.choose(split, SPLITS, "split")]
    rng = random.Random(f"prompts-{world.seed}-{split}-{seed}")
    return [prompt_spec(*rng.sample(pool, 2), rng) for _ in range(n)]


def demonstrations(specs: list[dict]) -> list[dict]:
    """Supervised fine-tuning data: each spec's chat messages followed by the correct response (every
    asked fact, no nuisance feature) as the assistant's turn."""
    def answer(spec):
        return {"role": "assistant", "content": render([spec["truth"][a] for a in spec["asked"]])}

    return [{"messages": s["messages"] + [answer(s)]} for s in specs]


def feature_rate(pairs: list[dict]) -> float:
    """The realised share of pairs whose chosen response carries the nuisance feature."""
    return sum(p["feature_on_chosen"] for p in pairs) / len(pairs) if pairs else 0.0

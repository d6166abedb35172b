"""Instructions and chat over the world: nine kinds of instruction in several phrasings each.

Every example is a user turn (usually a reading passage, then the instruction) and the assistant's
reference answer, as chat messages, with an exactly scorable reference: ``score(example, response)``
is exact match after normalising (case, punctuation), or F1 over the facts (marker values) or the
names the response writes. The kinds are split into seen ones (``train`` and ``test`` splits) and
``HELDOUT_KINDS`` that training never shows (the ``heldout`` split): does instruction tuning
generalise to instructions it never saw? Train and test use different people. Pure Python, seeded.

Introduced in notebook 07_instruction_tuning.
"""

from __future__ import annotations

import random

from labkit.core import world as W
from labkit.core.scoring import normalize, set_f1

KINDS = ("answer", "unknown", "list_facts", "summarize", "who", "rewrite", "compare", "filter", "verify")
HELDOUT_KINDS = ("compare", "filter", "verify")  # never in the train split
SEEN_KINDS = tuple(k for k in KINDS if k not in HELDOUT_KINDS)
SPLITS = {"train": SEEN_KINDS, "test": SEEN_KINDS, "heldout": HELDOUT_KINDS}
PEOPLE = {"train": 0.8, "test": 0.2}  # shares of the pretraining people; test and heldout use "test"
# How each kind is scored: exact match, or F1 over the values (facts) / the names the response writes.
SCORING = {"answer": "exact", "unknown": "exact", "list_facts": "values", "summarize": "values",
           "who": "exact", "rewrite": "exact", "compare": "exact", "filter": "names", "verify": "exact"}

# A claim about a person, after the name ("NAME works as a master baker").
CLAIMS = {"city": "was born in {v}", "year": "was born in the {v}", "job": "works as a {v}",
          "employer": "is employed by {v}", "hobby": "enjoys the {v}", "colour": "likes the {v}"}
_ANSWER = ["answer from the passage : {q}", "read the passage and answer : {q}",
           "{q} answer from the passage , or say unknown if it does not tell .", "using only the passage , {q}"]
PHRASINGS = {
    "answer": _ANSWER,
    "unknown": _ANSWER,  # the same request; the passage just does not tell
    "list_facts": ["list every fact the passage gives about {n} .", "write down all that the passage tells about {n} .",
                   "give every fact about {n} from the passage ."],
    "summarize": ["summarize the passage in one sentence .", "say in one sentence what the passage tells .",
                  "give a one sentence summary of the passage ."],
    "who": ["who in the passage {c} ?", "name the person who {c} .", "which person {c} ?"],
    "rewrite": ["rewrite this sentence in plain words : {s}", "say this more plainly : {s}",
                "give the plain form of this sentence : {s}"],
    "compare": ["who was born earlier , {a} or {b} ?", "of {a} and {b} , who is older ?",
                "which of {a} and {b} was born first ?", "who was born later , {a} or {b} ?",
                "of {a} and {b} , who is younger ?"],
    "filter": ["list everyone in the passage who {c} .", "name all the people in the passage who {c} .",
               "give the name of each person who {c} ."],
    "verify": ["is it true that {n} {c} ? answer yes or no .", "true or false : {n} {c} . answer yes or no .",
               "does the passage say that {n} {c} ? say yes or no ."],
}
LATER = (3, 4)  # the compare phrasings that ask for the later-born person
WORDS = ["unknown", "yes", "no", "from", "is", "a", "of", ",", "."]  # words only references write


def words() -> set[str]:
    """Every whole word the instruction generator writes (names and values aside)."""
    out = set(WORDS)
    for text in [t for ts in PHRASINGS.values() for t in ts] + list(CLAIMS.values()):
        out |= {w for w in text.split() if not w.startswith("{")}
    return out


def _others(rng, pool, people, k):
    """``k`` people from ``pool`` not in ``people``."""
    names = {p.name for p in people}
    return rng.sample([p for p in pool if p.name not in names], k)


def _shuffled(rng, people):
    people = list(people)
    rng.shuffle(people)
    return people


def _wrong(rng, attribute, value):
    return rng.choice([v for v in W.VALUES[attribute] if v != value])


def _make(kind, rng, pool):
    """(user text, reference, scored items) for one example of ``kind`` about people from ``pool``."""
    p = rng.choice(pool)
    a = rng.choice(W.ATTRIBUTES)
    phrasing = rng.choice(PHRASINGS[kind])
    if kind in ("answer", "unknown"):
        told = {p.name: W.ATTRIBUTES}
        if kind == "unknown":
            rest = [x for x in W.ATTRIBUTES if x != a]
            told = {p.name: tuple(sorted(rng.sample(rest, rng.randint(2, 5)), key=W.ATTRIBUTES.index))}
        people = _shuffled(rng, [p] + _others(rng, pool, [p], rng.randint(0, 2)))
        ref = "unknown ." if kind == "unknown" else f"{p.facts[a]} ."
        return f"{W.passage(people, rng, told)} {phrasing.format(q=W.QUESTIONS[a].format(n=p.name))}", ref, []
    if kind == "list_facts":
        told = tuple(sorted(rng.sample(W.ATTRIBUTES, rng.randint(2, 6)), key=W.ATTRIBUTES.index))
        people = _shuffled(rng, [p] + _others(rng, pool, [p], rng.randint(0, 1)))
        values = [p.facts[x] for x in told]
        return (f"{W.passage(people, rng, {p.name: told})} {phrasing.format(n=p.name)}",
                " ; ".join(values) + " .", values)
    if kind == "summarize":
        values = [p.facts["job"], p.facts["city"]]
        return f"{W.passage([p], rng)} {phrasing}", f"{p.name} is a {values[0]} from {values[1]} .", values
    if kind == "rewrite":
        s = W.bio_sentence(p, a, rng.randint(1, 2))
        return phrasing.format(s=s), W.bio_sentence(p, a, 0), []
    if kind in ("who", "verify"):
        k = rng.randint(0, 2) if kind == "who" else rng.randint(0, 1)
        people = _shuffled(rng, [p] + _others(rng, pool, [p], k))
        if kind == "who":  # ask about a value only the target has in this passage
            unique = [x for x in W.ATTRIBUTES if sum(q.facts[x] == p.facts[x] for q in people) == 1]
            if not unique:  # every value shared with someone: ask about a passage of the target alone
                people, unique = [p], list(W.ATTRIBUTES)
            a = rng.choice(unique)
            return (f"{W.passage(people, rng)} {phrasing.format(c=CLAIMS[a].format(v=p.facts[a]))}",
                    f"{p.name} .", [p.name])
        true = rng.random() < 0.5
        v = p.facts[a] if true else _wrong(rng, a, p.facts[a])
        return (f"{W.passage(people, rng)} {phrasing.format(n=p.name, c=CLAIMS[a].format(v=v))}",
                "yes ." if true else "no .", [])
    if kind == "compare":
        q = rng.choice([x for x in pool if x.facts["year"] != p.facts["year"]])
        people = _shuffled(rng, [p, q] + _others(rng, pool, [p, q], rng.randint(0, 1)))
        first, last = sorted([p, q], key=lambda x: int(x.facts["year"].split()[1]))
        answer = last if PHRASINGS["compare"].index(phrasing) in LATER else first
        return f"{W.passage(people, rng)} {phrasing.format(a=p.name, b=q.name)}", f"{answer.name} .", [answer.name]
    # filter: everyone in the passage who shares the target's value (the target and up to two more)
    same = [x for x in pool if x.name != p.name and x.facts[a] == p.facts[a]]
    others = [x for x in pool if x.facts[a] != p.facts[a]]
    people = _shuffled(rng, [p] + rng.sample(same, min(len(same), rng.randint(0, 2))) + rng.sample(others, 2))
    names = [x.name for x in people if x.facts[a] == p.facts[a]]
    return (f"{W.passage(people, rng)} {phrasing.format(c=CLAIMS[a].format(v=p.facts[a]))}",
            " , ".join(names) + " .", names)


def example(kind: str, rng: random.Random, people: list[W.Person]) -> dict:
    """One example of ``kind`` about ``people``: its chat messages, reference and scored items."""
    W.choose(kind, KINDS, "instruction kind")
    user, ref, items = _make(kind, rng, people)
    return {"kind": kind, "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": ref}],
            "reference": ref, "items": sorted(items)}


def instructions(world: W.World, split: str = "train", n_per_kind: int = 50, seed: int = 0) -> list[dict]:
    """``n_per_kind`` examples of each kind of ``split`` ('train', 'test': seen kinds; 'heldout'), kinds
    interleaved; train uses the train people, test and heldout the test people."""
    kinds = SPLITS[W.choose(split, tuple(SPLITS), "split")]
    pool = W.split_people(world, PEOPLE)["train" if split == "train" else "test"]
    rng = random.Random(f"instructions-{world.seed}-{split}-{seed}")
    return [example(k, rng, pool) for _ in range(n_per_kind) for k in kinds]


def score(example: dict, response: str) -> float:
    """How well ``response`` answers ``example``, in [0, 1]: exact match after ``normalize`` for exact
    kinds; F1 of the facts (marker values) or names it writes against the reference's for the others."""
    mode = SCORING[example["kind"]]
    if mode == "exact":
        return float(normalize(response) == normalize(example["reference"]))
    if mode == "values":
        found = {v for vs in W.find_values(response).values() for v in vs}
    else:
        found = set(W.find_names(response))
    return set_f1(found, example["items"])

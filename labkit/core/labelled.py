"""Labelled tasks over the world, for task heads: each with train/validation/test splits (by person)
and few-shot slices.

- ``sector``: sequence classification, a person's occupation sector (``SECTORS``) from a biography
  that names the person once and then uses a possessive pronoun (his/her/their), so a pronoun is in
  the text (``pronouns`` gives each person one, balanced within every sector).
- ``entities``: token classification, PERSON / PLACE / ORGANISATION spans as character offsets and
  as BIO tags over the whitespace words of a few sentences about a person and an organisation.
- ``extractive_qa``: a question about one of the people in a passage, answered by a character span
  (SQuAD's shape: ``answers = {"text": [...], "answer_start": [...]}``).
Every example lists its ``classes`` (label, entity types or the attribute asked): ``few_shot`` takes
k examples per class. Pure Python, seeded.

Introduced in notebook 09_task_heads.
"""

from __future__ import annotations

import random
import re

from labkit.core import world as W

TASKS = ("sector", "entities", "extractive_qa")
SPLITS = {"train": 0.6, "validation": 0.2, "test": 0.2}  # shares of the pretraining people
SECTOR_JOBS = {"craft": ["weaver", "tailor", "potter", "smith", "glazier", "mason"],
               "learned": ["teacher", "doctor", "nurse", "chemist", "lawyer", "judge"],
               "outdoor": ["farmer", "miner", "hunter", "builder", "pilot", "sailor"],
               "town": ["baker", "brewer", "clerk", "painter", "singer", "poet"]}
SECTORS = tuple(SECTOR_JOBS)
SECTOR = {f"master {j}": s for s, jobs in SECTOR_JOBS.items() for j in jobs}  # job value -> sector
PRONOUNS = ("he", "she", "they")
POSSESSIVE = {"he": "his", "she": "her", "they": "their"}
# Sentences about a person already named: the possessive first, so no verb agrees with the pronoun.
POSSESSIVE_TEMPLATES = {"city": "{p} birthplace is {v} .", "year": "{p} birth was in the {v} .",
                        "job": "{p} trade is that of a {v} .", "employer": "{p} wage comes from {v} .",
                        "hobby": "{p} free days go to the {v} .", "colour": "{p} favourite colour is the {v} ."}
ENTITY_TYPES = ("PERSON", "PLACE", "ORGANISATION")
TAGS = ("O",) + tuple(f"{b}-{t}" for t in ENTITY_TYPES for b in "BI")
ORG_TEMPLATES = ["{o} was founded in the {y} .", "{o} is seated in Fort {s} .", "{o} is headed by {h} ."]
_ENTITY = {"n": "PERSON", "h": "PERSON", "o": "ORGANISATION", "s": "PLACE"}  # placeholder -> type


def words() -> set[str]:
    """Every whole word the labelled tasks write (names and values aside)."""
    texts = list(POSSESSIVE_TEMPLATES.values()) + ORG_TEMPLATES + list(POSSESSIVE.values())
    return {w for t in texts for w in t.split() if not w.startswith("{")} | set(SECTORS) | {"Fort"}


def pronouns(world: W.World) -> dict[str, str]:
    """Each person's pronoun (the truth): assigned in turn within every sector, so the world is balanced."""
    rng = random.Random(f"pronouns-{world.seed}")
    out = {}
    for sector in SECTORS:
        people = [p.name for p in world.pretrain_people + world.heldout if SECTOR[p.facts["job"]] == sector]
        rng.shuffle(people)
        out.update({name: PRONOUNS[i % len(PRONOUNS)] for i, name in enumerate(people)})
    return out


def sector_example(person: W.Person, pronoun: str, rng: random.Random, hide_job: bool = False) -> dict:
    """A biography naming ``person`` once, then with ``pronoun``'s possessive; ``hide_job`` leaves the
    job out (then only correlates in the text hint at the sector)."""
    attrs = [a for a in W.ATTRIBUTES if not (hide_job and a == "job")]
    rng.shuffle(attrs)
    first = [a for a in attrs if a != "job"][0]  # the named sentence never gives the job away alone
    attrs.remove(first)
    text = " ".join([W.bio_sentence(person, first, rng.randrange(3))] + [
        POSSESSIVE_TEMPLATES[a].format(p=POSSESSIVE[pronoun], v=person.facts[a]) for a in attrs])
    label = SECTOR[person.facts["job"]]
    return {"text": text, "label": label, "label_id": SECTORS.index(label), "pronoun": pronoun,
            "name": person.name, "job_shown": not hide_job, "classes": [label]}


def _assemble(sentences: list[tuple[str, dict]]) -> tuple[str, list[tuple[int, int, str]]]:
    """Join (template, fills) sentences into text and the (start, end, type) spans of the fills whose
    placeholder is an entity (``_ENTITY``, or a type given as fills['_types'])."""
    text, spans = "", []
    for template, fills in sentences:
        text += " " if text else ""
        for piece in re.split(r"(\{\w+\})", template):
            key = piece[1:-1] if piece.startswith("{") else None
            value = fills[key] if key else piece
            kind = fills.get("_types", {}).get(key, _ENTITY.get(key)) if key else None
            if kind:
                spans.append((len(text), len(text) + len(value), kind))
            text += value
    return text, spans


def bio_tags(text: str, spans: list[tuple[int, int, str]]) -> tuple[list[str], list[str]]:
    """The whitespace words of ``text`` and their BIO tags from character ``spans``."""
    out_words, tags, start = [], [], 0
    for w in text.split(" "):
        hit = [s for s in spans if s[0] <= start < s[1]]
        tags.append("O" if not hit else ("B-" if start == hit[0][0] else "I-") + hit[0][2])
        out_words.append(w)
        start += len(w) + 1
    return out_words, tags


def entities_example(person: W.Person, org: W.Org, rng: random.Random) -> dict:
    """2-4 sentences about ``person`` (and, half the time, ``org``) with entity spans and BIO tags."""
    types = {"city": "PLACE", "employer": "ORGANISATION"}
    sentences = [(W.BIO_TEMPLATES[a][rng.randrange(3)], {"n": person.name, "v": person.facts[a],
                                                         "_types": {"v": types.get(a)}})
                 for a in rng.sample(W.ATTRIBUTES, rng.randint(1, 3))]
    if rng.random() < 0.5:
        f = org.facts
        sentences.append((rng.choice(ORG_TEMPLATES), {"o": org.name, "y": f"year {f['founded']}",
                                                      "s": f["seat"], "h": f["head"]}))
        rng.shuffle(sentences)
    text, spans = _assemble(sentences)
    for i, (s, _, t) in enumerate(spans):
        if t == "PLACE" and text[s - 5:s] == "Fort ":  # "Fort Tarn" is the place, as in biographies
            spans[i] = (s - 5, spans[i][1], t)
    words_, tags = bio_tags(text, spans)
    return {"text": text, "words": words_, "tags": tags, "tag_ids": [TAGS.index(t) for t in tags],
            "spans": spans, "classes": sorted({t for _, _, t in spans})}


def qa_example(person: W.Person, others: list[W.Person], rng: random.Random) -> dict:
    """A passage about ``person`` and ``others`` (shuffled) and a question about ``person``, answered by
    the character span of the value in ``person``'s sentence."""
    a = rng.choice(W.ATTRIBUTES)
    people = [person] + others
    rng.shuffle(people)
    sentences = []
    for p in people:
        attrs = list(W.ATTRIBUTES)
        rng.shuffle(attrs)
        sentences += [(W.BIO_TEMPLATES[x][rng.randrange(3)],
                       {"n": p.name, "v": p.facts[x], "_types": {"n": None, "v": "ANSWER" if (p, x) == (person, a)
                                                                 else None}}) for x in attrs]
    context, spans = _assemble(sentences)
    start = spans[0][0]
    return {"context": context, "question": W.QUESTIONS[a].format(n=person.name),
            "answers": {"text": [person.facts[a]], "answer_start": [start]}, "classes": [a]}


def task(world: W.World, name: str, split: str = "train", per_person: int = 1, seed: int = 0) -> list[dict]:
    """The examples of labelled task ``name`` (``TASKS``) for ``split`` (``SPLITS``): ``per_person``
    examples about each person of the split (splits never share a person)."""
    W.choose(name, TASKS, "task")
    pool = W.split_people(world, SPLITS)[W.choose(split, tuple(SPLITS), "split")]
    rng = random.Random(f"labelled-{world.seed}-{name}-{split}-{seed}")
    truth = pronouns(world)
    out = []
    for _ in range(per_person):
        for p in pool:
            if name == "sector":
                out.append(sector_example(p, truth[p.name], rng))
            elif name == "entities":
                out.append(entities_example(p, rng.choice(world.orgs), rng))
            else:
                others = rng.sample([q for q in pool if q.name != p.name], rng.randint(0, 2))
                out.append(qa_example(p, others, rng))
    return out


def few_shot(examples: list[dict], k: int, seed: int = 0) -> list[dict]:
    """A few-shot slice: for each class (in sorted order), ``k`` examples of it (seeded choice, no
    example twice; fewer where the examples hold fewer)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k!r}.")
    order = list(range(len(examples)))
    random.Random(f"few-shot-{seed}").shuffle(order)
    chosen: dict[int, None] = {}  # ordered set
    for c in sorted({c for e in examples for c in e["classes"]}):
        chosen.update(dict.fromkeys([i for i in order if c in examples[i]["classes"] and i not in chosen][:k]))
    return [examples[i] for i in chosen]

"""World v2's general text for pretraining: plain statements that use the words of instructions,
preferences and labelled tasks without being instructions, preference pairs or labelled examples.

Base model v2 reads these (so the words "older", "summary", "unknown", "his" ... have meanings) but
never a chat turn, a graded response or a label: notebooks 07-09 still have the format to teach.
The second domain's text is not here at all (notebook 10 brings it). Pure Python, seeded.
"""

from __future__ import annotations

import random

from labkit.core import world as W
from labkit.core.instructions import CLAIMS
from labkit.core.labelled import ORG_TEMPLATES, POSSESSIVE, POSSESSIVE_TEMPLATES
from labkit.core.preferences import NOUNS

KINDS = ("compare", "claims", "group", "summary", "plain", "pronoun", "org", "unknown", "talk")


def _claim(person: W.Person, attribute: str) -> str:
    return CLAIMS[attribute].format(v=person.facts[attribute])


def _false_claim(rng: random.Random, person: W.Person, attribute: str) -> str:
    value = rng.choice([v for v in W.VALUES[attribute] if v != person.facts[attribute]])
    return CLAIMS[attribute].format(v=value)


def _year(person: W.Person) -> int:
    return int(person.facts["year"].split()[-1])


def _compare(rng, people):
    pairs = [(a, b) for a in people for b in people if _year(a) < _year(b)]
    if not pairs:  # every year the same (rare): say something else
        return _claims(rng, people)
    old, young = rng.choice(pairs)
    return rng.choice([
        f"{old.name} was born earlier and is older ; {young.name} was born later and is younger .",
        f"of {old.name} and {young.name} , {old.name} was born first and is the older person .",
        f"of {old.name} and {young.name} , {young.name} is younger : {young.name} came into the world later .",
        f"{young.name} is the younger one , born in the {young.facts['year']} ; {old.name} is older , "
        f"born in the {old.facts['year']} ."])


def _claims(rng, people):
    p = rng.choice(people)
    a, b = rng.sample(W.ATTRIBUTES, 2)
    return rng.choice([
        f"it is true that {p.name} {_claim(p, a)} . it is false that {p.name} {_false_claim(rng, p, b)} .",
        f"yes , {p.name} {_claim(p, a)} . no , {p.name} is not one who {_false_claim(rng, p, b)} .",
        f"every fact is true or false : that {p.name} {_claim(p, a)} is true .",
        f"if you read about {p.name} , you learned that {p.name} {_claim(p, a)} , and not that "
        f"{p.name} {_false_claim(rng, p, b)} ."])


def _listed(names: list[str]) -> str:
    return " and ".join(names) if len(names) < 3 else " , ".join(names[:-1]) + f" and {names[-1]}"


def _group(rng, people):
    attribute = rng.choice(W.ATTRIBUTES)
    value = rng.choice(people).facts[attribute]
    names = [p.name for p in people if p.facts[attribute] == value]
    who = CLAIMS[attribute].format(v=value)
    return rng.choice([f"everyone here who {who} : {_listed(names)} .",
                       f"the people who {who} are {_listed(names)} ." if len(names) > 1 else
                       f"the only person who {who} is {_listed(names)} .",
                       f"of these people , only {_listed(names)} {who} ." if len(names) == 1 else
                       f"of these people , each of {_listed(names)} {who} ."])


def _summary(rng, people):
    p = rng.choice(people)
    values = " ; ".join(p.facts[a] for a in W.ATTRIBUTES)
    return rng.choice([f"a summary of every fact about {p.name} : {values} .",
                       f"to summarize {p.name} in one sentence : {p.name} {_claim(p, 'city')} , "
                       f"{_claim(p, 'job')} and {_claim(p, 'hobby')} .",
                       f"i write down the facts about {p.name} , each in a list : {values} .",
                       f"the list gives all the facts about {p.name} : {values} ."])


def _plain(rng, people):
    p, a = rng.choice(people), rng.choice(W.ATTRIBUTES)
    sentence = W.bio_sentence(p, a, rng.randrange(3))
    return rng.choice([f"the sentence {sentence} tells in plain words that {p.name} {_claim(p, a)} .",
                       f"to rewrite it more plainly : {p.name} {_claim(p, a)} .",
                       f"using plain words , this is one fact : {p.name} {_claim(p, a)} .",
                       f"in plain form : {p.name} {_claim(p, a)} ."])


def _pronoun(rng, people):
    p = rng.choice(people)
    possessive = rng.choice(list(POSSESSIVE.values()))
    attrs = rng.sample(W.ATTRIBUTES, 3)
    first = W.bio_sentence(p, attrs[0], rng.randrange(3))
    return " ".join([first] + [POSSESSIVE_TEMPLATES[a].format(p=possessive, v=p.facts[a]) for a in attrs[1:]])


def _org(rng, people):
    head = rng.choice(people)
    org = f"{rng.choice(W.ORG_STEMS)} {rng.choice(W.ORG_KINDS)}"
    city = rng.choice(W.CITIES)
    sentences = [t.format(o=org, y=rng.choice(W.VALUES["year"]), s=city, h=head.name) for t in ORG_TEMPLATES]
    if rng.random() < 0.5:
        return " ".join(sentences)
    return f"{org} , which is seated in Fort {city} , is headed by {head.name} ."


def _unknown(rng, people):
    p = rng.choice(people)
    a, b = rng.sample(W.ATTRIBUTES, 2)
    return rng.choice([
        f"the list about {p.name} tells only that {p.name} {_claim(p, a)} ; the {NOUNS[b]} of {p.name} is unknown .",
        f"i asked about the {NOUNS[b]} of {p.name} : it is unknown ."])


def _talk(rng, people):
    p, q = rng.sample(people, 2)
    return rng.choice([
        f"i asked {p.name} to tell me about the town . {p.name} was happy to help !",
        f"{p.name} read the list with care and gives the answer in only one sentence .",
        f"you go to {p.name} for help with the craft ; {p.name} {_claim(p, 'job')} .",
        f"here {q.name} asked {p.name} to give more facts and to say what {p.name} learned .",
        f"{p.name} works outdoor days and {_claim(p, 'hobby')} ; do you go with {p.name} ?"])


_MAKERS = {"compare": _compare, "claims": _claims, "group": _group, "summary": _summary, "plain": _plain,
           "pronoun": _pronoun, "org": _org, "unknown": _unknown, "talk": _talk}


def prose(people: list[W.Person], rng: random.Random, kind: str | None = None) -> str:
    """One statement of ``kind`` (random if None) about people drawn from ``people`` (at least 3)."""
    if kind is None:
        kind = rng.choice(KINDS)
    W.choose(kind, KINDS, "prose kind")
    return _MAKERS[kind](rng, rng.sample(people, min(len(people), rng.randint(3, 5))))


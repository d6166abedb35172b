"""New knowledge: people the base model never saw, their documents, and fine-tuning them in.

The new people come from the world's held-out slice (any world seed: a seed other than the base
model's gives people from a different world, none of them in pretraining). Their facts are
written as documents, either one fixed rendering per fact or several paraphrases, and trained in
by continued pretraining (``labkit.train.fit`` on the documents: loss on every token, as the
base model was trained); closed-book questions then measure what was stored *and* can be
extracted. Asked the other way round (the facts given, the name asked: ``who_questions``,
``both_ways``), as multiple choice by likelihood, they measure the reversal curse. Made heads of
the world's Houses (``heads_of_houses``), they give two-hop questions (``hop_questions``: "where was
the head of House X born?" needs "who is the head of House X?" first). Introduced in notebook
05_rag_vs_finetuning.
"""

from __future__ import annotations

import random

from labkit.core import world as W
from labkit.engine.callbacks import Probe
from labkit.engine.evaluate import accuracy, candidate_logprobs


def new_people(seed: int, n: int, base_seed: int = 0) -> list[W.Person]:
    """``n`` people the base model (pretrained on world ``base_seed``) has never seen: the held-out
    slice of world ``seed``, minus any name that happens to be in the base world."""
    base = W.make_world(base_seed)
    known = {p.name for p in base.pretrain_people}
    people = [p for p in W.make_world(seed, n_heldout=max(100, 2 * n)).heldout if p.name not in known]
    if len(people) < n:
        raise ValueError(f"World {seed} has only {len(people)} held-out people; ask for fewer than {n}.")
    return people[:n]


def single_rendering(person: W.Person) -> str:
    """One fixed rendering of every fact: the first template of each attribute, in a fixed order."""
    return " ".join(W.bio_sentence(person, a, 0) for a in W.ATTRIBUTES)


def documents(people: list[W.Person], paraphrases: int = 1, seed: int = 0) -> list[str]:
    """The training documents: ``paraphrases=1`` gives one fixed rendering per person; more gives
    that many biographies per person, each with a random template per fact and shuffled order."""
    if paraphrases <= 1:
        return [single_rendering(p) for p in people]
    rng = random.Random(f"paraphrases-{seed}")
    return [W.biography(p, rng) for p in people for _ in range(paraphrases)]


def closed_book_pairs(people: list[W.Person]) -> list[tuple[str, str]]:
    """One closed-book question per fact: (prompt, answer)."""
    return [W.qa_pair(p, a) for p in people for a in W.ATTRIBUTES]


# A fact as a clause after "who", the value last (the reverse of every training sentence, which names the
# person first): "Q : who was born in Fort Ardel and works as a master baker ? A :" -> the person's name.
WHO_CLAUSES = {"city": "was born in {v}", "year": "was born in the {v}", "job": "works as a {v}",
               "employer": "is employed by {v}", "hobby": "enjoys the {v}", "colour": "likes the {v}"}
WHO_ATTRIBUTES = ("city", "job")  # the facts a who-question gives: 24 towns x 24 jobs, rarely shared by two


def who_questions(people: list[W.Person], attributes=WHO_ATTRIBUTES, among=None) -> list[tuple[str, str]]:
    """Reversed questions, (prompt, name): the person's values of ``attributes`` given, their name asked.
    Only for people whose combination no one else in ``among`` (default: ``people``) shares: the others
    have no single answer. The question names no one, so a retriever must find the person by their facts."""
    def combo(p):
        return tuple(p.facts[a] for a in attributes)

    counts = [combo(q) for q in (people if among is None else among)]
    return [("Q : who " + " and ".join(WHO_CLAUSES[a].format(v=v) for a, v in zip(attributes, combo(p))) + " ? A :",
             p.name) for p in people if counts.count(combo(p)) == 1]


def most_likely(model, tokenizer, prompts: list[str], candidates: list[str], batch_size: int = 64) -> list:
    """For each prompt, the candidate the model finds most likely after it (``evaluate.candidate_logprobs``),
    or None where two or more tie for the top."""
    picks = []
    for row in candidate_logprobs(model, tokenizer, prompts, candidates, batch_size):
        best = max(row)
        picks.append(candidates[row.index(best)] if row.count(best) == 1 else None)
    return picks


def choice_accuracy(model, tokenizer, pairs: list[tuple[str, str]], candidates: list[str],
                    batch_size: int = 64) -> float:
    """Multiple choice by likelihood: the share of (prompt, answer) pairs whose ``answer`` is, of all
    ``candidates``, the one the model finds most likely (``most_likely``; a tie counts as wrong). Chance is
    1 / len(candidates). It measures what the model knows even where it would not write the answer itself:
    this model was never trained to answer a "who" question."""
    if any(answer not in candidates for _, answer in pairs):
        raise ValueError("Every right answer must be among the candidates.")
    picks = most_likely(model, tokenizer, [q for q, _ in pairs], candidates, batch_size)
    return sum(pick == answer for pick, (_, answer) in zip(picks, pairs)) / max(len(pairs), 1)


def both_ways(model, tokenizer, people: list[W.Person], attributes=WHO_ATTRIBUTES, prompt=None, among=None) -> dict:
    """The reversal test, each direction as multiple choice (``choice_accuracy``) on the people
    ``who_questions`` asks about (``among``: as there): ``forward``, name -> fact (each of ``attributes``,
    among its values), and ``backward``, facts -> name (among the names of ``people``), with each
    direction's chance. ``prompt(question)`` may put passages before a question (RAG); by default it is
    asked closed-book."""
    prompt = prompt or (lambda question: question)
    who = who_questions(people, attributes, among)
    by_name = {p.name: p for p in people}
    forward = [choice_accuracy(model, tokenizer, [(prompt(W.question(by_name[n], a)), by_name[n].facts[a])
                                                  for _, n in who], W.VALUES[a]) for a in attributes]
    return {"n_questions": len(who), "forward": sum(forward) / len(forward),
            "backward": choice_accuracy(model, tokenizer, [(prompt(q), n) for q, n in who], list(by_name)),
            "chance_forward": sum(1 / len(W.VALUES[a]) for a in attributes) / len(attributes),
            "chance_backward": 1 / len(by_name)}


# --- two hops: the head of a House, then where that person was born --------------------------

HOUSES = W.VALUES["employer"]  # the world's Houses (its employers): one head each, so at most 16 heads


def heads_of_houses(people: list[W.Person], seed: int = 0) -> list[tuple[str, W.Person]]:
    """(House, person): the first people (at most one per House) each made the head of a different House,
    the Houses in a random order of ``seed``. A person's own facts (their employer too) are unchanged."""
    houses = random.Random(f"houses-{seed}").sample(HOUSES, len(HOUSES))
    return list(zip(houses, people))


def head_document(house: str, person: W.Person) -> str:
    """The first hop as a document: 'the head of House X is P .'."""
    return f"the head of {house} is {person.name} ."


def head_question(house: str) -> str:
    """The first hop asked: who is the head of the House (the answer: a name)."""
    return f"Q : who is the head of {house} ? A :"


def birthplace_question(name: str) -> str:
    """The second hop asked about a name, in the world's question format (``world.question``)."""
    return W.question(W.Person(name, {}), "city")


def two_hop_question(house: str) -> str:
    """Both hops in one question: the head's birthplace, without the head's name."""
    return f"Q : where was the head of {house} born ? A :"


def hop_questions(heads: list[tuple[str, W.Person]]) -> dict:
    """Per ``heads_of_houses`` pair, three questions as (prompt, answer) with their candidates (multiple
    choice): 'hop 1' (House -> name, among the heads' names), 'hop 2' (name -> town, among all towns) and
    'two hops' (House -> town, among all towns): {hop: (pairs, candidates)}."""
    names = [p.name for _, p in heads]
    return {"hop 1": ([(head_question(h), p.name) for h, p in heads], names),
            "hop 2": ([(birthplace_question(p.name), p.facts["city"]) for _, p in heads], W.VALUES["city"]),
            "two hops": ([(two_hop_question(h), p.facts["city"]) for h, p in heads], W.VALUES["city"])}


def two_hop_documents(heads: list[tuple[str, W.Person]]) -> list[str]:
    """What the two-hop run trains on: each head's biography (one rendering: hop 2), the head documents
    and the first hop as question and answer text (hop 1 as a question). No text states both hops."""
    return ([single_rendering(p) for _, p in heads] + [head_document(h, p) for h, p in heads]
            + [f"{head_question(h)} {p.name}{W.END}" for h, p in heads])


def hop_accuracy(model, tokenizer, heads: list[tuple[str, W.Person]]) -> dict:
    """Each of ``hop_questions``' three questions asked closed-book as multiple choice (``choice_accuracy``),
    with its chance: {'hop 1', 'hop 2', 'two hops', 'chance hop 1', 'chance hop 2', 'chance two hops'}."""
    out = {}
    for hop, (pairs, candidates) in hop_questions(heads).items():
        out[hop] = choice_accuracy(model, tokenizer, pairs, candidates)
        out[f"chance {hop}"] = 1 / len(candidates)
    return out


def chance_accuracy() -> float:
    """Expected exact match of a uniform guess among each attribute's values (facts are uniform)."""
    return sum(1 / len(W.VALUES[a]) for a in W.ATTRIBUTES) / len(W.ATTRIBUTES)


def edit_facts(people: list[W.Person], n: int, attribute: str = "city", seed: int = 0):
    """A copy of ``people`` where the first ``n`` have a new value of ``attribute`` (always a
    different one); returns (people, indices changed)."""
    rng = random.Random(f"edit-{seed}-{attribute}")
    out = list(people)
    for i in range(min(n, len(people))):
        old = people[i].facts[attribute]
        new = rng.choice([v for v in W.VALUES[attribute] if v != old])
        out[i] = W.Person(people[i].name, {**people[i].facts, attribute: new})
    return out, list(range(min(n, len(people))))


class KnowledgeCurve(Probe):
    """Closed-book accuracy on the new facts and recall of old facts (``old_pairs``), at step 0 and
    every ``every`` steps, so learning and forgetting show on one time axis."""

    def __init__(self, tokenizer, new_pairs, old_pairs, every: int, strict: bool = True,
                 initial: dict | None = None):
        super().__init__(every, initial)
        self.tok, self.new, self.old, self.strict = tokenizer, new_pairs, old_pairs, strict

    def metrics(self, model) -> dict:
        return {"new_facts": accuracy(model, self.tok, self.new, self.strict),
                "old_facts": accuracy(model, self.tok, self.old, self.strict)}

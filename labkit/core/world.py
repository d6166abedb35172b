"""A small fictional world with known ground truth (pure Python, no torch).

People have six attributes. The world renders them as biographies (several paraphrases),
question/answer pairs, reading passages (a passage, then questions about it) and a second
domain (records of organisations) to fine-tune on. Same seed -> byte-identical data.

Introduced in notebook 00_tour.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field

# --- vocabularies (every word the world can produce; the tokenizer is built from these) ---
CITIES = ["Ardel", "Brisk", "Corvan", "Dunmore", "Elvet", "Farrow", "Galt", "Harth", "Istren",
          "Jorvik", "Kessel", "Lunder", "Marrow", "Norrin", "Orvel", "Pellam", "Quarn", "Rusk",
          "Sorrel", "Tarn", "Umber", "Varrow", "Wendel", "Yarrow"]
JOBS = ["baker", "pilot", "teacher", "farmer", "painter", "doctor", "sailor", "weaver", "miner",
        "tailor", "chemist", "lawyer", "potter", "singer", "builder", "nurse", "clerk", "hunter",
        "brewer", "poet", "smith", "judge", "glazier", "mason"]
ORG_STEMS = ["Ashford", "Bellmont", "Copperfield", "Deepwell", "Eastgate", "Fernhill", "Goldcrest",
             "Highbury", "Ironside", "Kingsley", "Larkspur", "Millbrook", "Northam", "Oakridge",
             "Pinecrest", "Redmoor"]
ORG_KINDS = ["Works", "Bank"]
HOBBIES = ["chess", "fishing", "archery", "gardening", "rowing", "cycling", "knitting", "climbing",
           "dancing", "fencing", "hiking", "juggling", "pottery", "riddles", "sailing", "skating",
           "stargazing", "swimming", "tennis", "whistling"]
COLOURS = ["red", "blue", "green", "amber", "violet", "grey", "white", "black", "teal", "gold",
           "silver", "crimson"]
YEARS = [str(y) for y in range(1950, 2006)]

# Name syllables: consonant+vowel pairs, so a name splits into syllable tokens unambiguously.
CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
SYLLABLES = [c + v for c in CONSONANTS for v in VOWELS]

END = " ."  # every answer, completion and record ends with this marker

ATTRIBUTES = ("city", "year", "job", "employer", "hobby", "colour")
# Every value is written with a marker word before it ("Fort Tarn", "year 1980", "master baker"),
# in biographies, answers and records alike. The marker is what makes reading learnable by a tiny
# model: answering becomes "say the marker, then copy what followed it in the passage", the
# induction pattern small transformers pick up fastest (see the model card).
MARKERS = {"city": "Fort", "year": "year", "job": "master", "employer": "House",
           "hobby": "pastime", "colour": "colour"}
BARE = {"city": CITIES, "year": YEARS, "job": JOBS, "employer": ORG_STEMS, "hobby": HOBBIES,
        "colour": COLOURS}
VALUES = {a: [f"{MARKERS[a]} {v}" for v in BARE[a]] for a in ATTRIBUTES}

# Biography paraphrases: three per attribute; "{v}" always ends the sentence, so the text before
# it is a completion prompt.
BIO_TEMPLATES = {
    "city": ["{n} was born in {v} .", "{n} came into the world in {v} .", "the birthplace of {n} is {v} ."],
    "year": ["{n} was born in the {v} .", "{n} arrived in the {v} .", "{n} has lived since the {v} ."],
    "job": ["{n} works as a {v} .", "{n} earns a living as a {v} .", "by trade {n} is a {v} ."],
    "employer": ["{n} is employed by {v} .", "{n} draws a wage from {v} .", "the employer of {n} is {v} ."],
    "hobby": ["{n} spends free days on the {v} .", "in spare time {n} enjoys the {v} .",
              "the hobby of {n} is the {v} ."],
    "colour": ["{n} likes the {v} .", "the favourite colour of {n} is the {v} .", "{n} always wears the {v} ."],
}
QUESTIONS = {
    "city": "where was {n} born ?",
    "year": "when was {n} born ?",
    "job": "what is the job of {n} ?",
    "employer": "who employs {n} ?",
    "hobby": "what hobby does {n} have ?",
    "colour": "what colour does {n} like ?",
}
# The fine-tuning domain: records of organisations (a new format and new facts).
ORG_FIELDS = ("founded", "seat", "sector", "head")
SECTORS = ["shipping", "mining", "banking", "textiles", "farming", "printing", "glassware", "timber"]

# Markers and punctuation used by the renderers.
WORDS = ["Q", "A", ":", "?", ".", ",", "passage", "record", "of", "the", "is", "was", "born", "in",
         "year", "founded", "seat", "sector", "head", "field", "=", ";", "name"]


@functools.cache
def _reserved() -> frozenset[str]:
    """Lower-cased vocabulary words: a name must not be one of them."""
    return frozenset(w.lower() for w in vocabulary())


def vocabulary() -> list[str]:
    """Every whole word the world can write (names excluded: they are built from syllables)."""
    words = set(WORDS) | set(CITIES) | set(JOBS) | set(HOBBIES) | set(COLOURS) | set(YEARS)
    words |= set(ORG_STEMS) | set(ORG_KINDS) | set(SECTORS) | set(ATTRIBUTES) | set(MARKERS.values())
    for texts in list(BIO_TEMPLATES.values()) + [[q] for q in QUESTIONS.values()]:
        for t in texts:
            words |= {w for w in t.split() if not w.startswith("{")}
    return sorted(words)


@dataclass(frozen=True)
class Person:
    name: str
    facts: dict  # attribute -> value (a string from VALUES[attribute])


@dataclass(frozen=True)
class Org:
    name: str
    facts: dict  # field -> value


@dataclass
class World:
    """People and organisations with their ground truth, split into named slices.

    - ``qa_seen``: in pretraining, as biographies and as question/answer pairs.
    - ``qa_unseen``: in pretraining as biographies only (is their knowledge extractable by QA?).
    - ``heldout``: never seen in pretraining: new knowledge to inject (fine-tuning or RAG).
    - ``orgs``: the organisation-records domain to fine-tune on.
    """

    seed: int
    qa_seen: list[Person]
    qa_unseen: list[Person]
    heldout: list[Person]
    orgs: list[Org]
    taken: set = field(default_factory=set, repr=False)  # every name in use (for fresh people)

    @property
    def pretrain_people(self) -> list[Person]:
        return self.qa_seen + self.qa_unseen

    def person(self, name: str) -> Person:
        for p in self.qa_seen + self.qa_unseen + self.heldout:
            if p.name == name:
                return p
        raise KeyError(f"No person named {name!r} in this world (seed {self.seed}).")


def _name(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables)).capitalize()


def make_name(rng: random.Random, taken: set[str]) -> str:
    """A fresh 'First Last' name (2 + 2 syllables) not in ``taken``; adds it to ``taken``."""
    reserved = _reserved()
    while True:
        first, last = _name(rng, 2), _name(rng, 2)
        name = f"{first} {last}"
        if name not in taken and first.lower() not in reserved and last.lower() not in reserved:
            taken.add(name)
            return name


def sample_person(rng: random.Random, taken: set[str]) -> Person:
    """A person with uniformly sampled attributes (so no value can be guessed from a prior)."""
    name = make_name(rng, taken)
    return Person(name, {a: rng.choice(VALUES[a]) for a in ATTRIBUTES})


def make_world(seed: int = 0, n_people: int = 300, qa_seen_frac: float = 0.8,
               n_heldout: int = 100, n_orgs: int = 60) -> World:
    """Generate the world for ``seed``: deterministic, splits disjoint by construction."""
    rng = random.Random(f"world-{seed}")
    taken: set[str] = set()
    people = [sample_person(rng, taken) for _ in range(n_people)]
    heldout = [sample_person(rng, taken) for _ in range(n_heldout)]
    n_seen = int(round(qa_seen_frac * n_people))
    org_names: set[str] = set()
    orgs = []
    while len(orgs) < n_orgs:
        name = f"{_name(rng, 2)} {rng.choice(ORG_KINDS)}"
        if name in org_names:
            continue
        org_names.add(name)
        orgs.append(Org(name, {"founded": rng.choice(YEARS), "seat": rng.choice(CITIES),
                               "sector": rng.choice(SECTORS), "head": make_name(rng, taken)}))
    return World(seed, people[:n_seen], people[n_seen:], heldout, orgs, taken)


# --- renderers: text with its ground truth alongside ---

def bio_sentence(person: Person, attribute: str, template: int = 0) -> str:
    return BIO_TEMPLATES[attribute][template].format(n=person.name, v=person.facts[attribute])


def biography(person: Person, rng: random.Random, attributes=ATTRIBUTES) -> str:
    """One paraphrase of a biography: a random template per attribute, sentences shuffled."""
    attrs = list(attributes)
    rng.shuffle(attrs)
    return " ".join(bio_sentence(person, a, rng.randrange(3)) for a in attrs)


def bio_prompt(person: Person, attribute: str, template: int = 0) -> tuple[str, str]:
    """(prompt, answer) for completing a biography sentence."""
    text = BIO_TEMPLATES[attribute][template]
    prompt = text.split("{v}")[0].format(n=person.name).rstrip()
    return prompt, person.facts[attribute]


def question(person: Person, attribute: str) -> str:
    return "Q : " + QUESTIONS[attribute].format(n=person.name) + " A :"


def qa_pair(person: Person, attribute: str) -> tuple[str, str]:
    """(prompt, answer) for a closed-book question; the answer is followed by ' .'."""
    return question(person, attribute), person.facts[attribute]


def qa_text(person: Person, attribute: str) -> str:
    q, a = qa_pair(person, attribute)
    return f"{q} {a} ."


def passage(people: list[Person], rng: random.Random, told: dict | None = None) -> str:
    """A reading passage: a biography of each person in turn, marked as context; ``told`` maps a
    name to the attributes its biography tells (default: all)."""
    return " ".join("passage : " + biography(p, rng, (told or {}).get(p.name, ATTRIBUTES)) for p in people)


def reading_example(people: list[Person], asked: list[tuple[Person, str]],
                    rng: random.Random) -> list[tuple[str, str]]:
    """Passages about ``people`` then questions: returns [(prompt, answer)], prompts cumulative.

    The prompt of question i holds the passage and every earlier question with its answer.
    """
    text = passage(people, rng)
    out = []
    for person, attribute in asked:
        q, a = qa_pair(person, attribute)
        prompt = f"{text} {q}"
        out.append((prompt, a))
        text = f"{prompt} {a} ."
    return out


def org_record_prompt(org: Org) -> str:
    return f"record of {org.name} :"


def org_record(org: Org) -> str:
    """The target format of the fine-tuning domain: one line of field = value pairs."""
    body = " ; ".join(f"{f} = {org.facts[f]}" for f in ORG_FIELDS)
    return f"{org_record_prompt(org)} {body} ."


def record_prompt(person: Person, rng: random.Random) -> str:
    """The record-extraction task: a passage about a person, then 'record of NAME :'."""
    return f"passage : {biography(person, rng)} record of {person.name} :"


def record_answer(person: Person) -> str:
    """The target: every value with its marker, in a fixed order, separated by ';'."""
    return " ; ".join(person.facts[a] for a in ATTRIBUTES)


def parse_record(text: str) -> dict:
    """Read 'Fort Tarn ; year 1980 ; ...' back into {attribute: value}; each part is assigned by
    its marker word (unknown or malformed parts are skipped)."""
    by_marker = {m: a for a, m in MARKERS.items()}
    out = {}
    for part in text.rstrip(" .").split(";"):
        words = part.split()
        if len(words) >= 2 and words[0] in by_marker:
            out.setdefault(by_marker[words[0]], " ".join(words))
    return out


# --- world v2: what the v2 generators share (instructions, preferences, labelled, domain, skew) ---
# Everything above is v1 and stays byte-identical (tests/test_world.py pins it); v2 only adds.

def choose(value, choices, what: str):
    """``value`` if it is one of ``choices``, else one ValueError that names the valid choices."""
    if value not in choices:
        raise ValueError(f"Unknown {what} {value!r}: choose one of {', '.join(map(repr, choices))}.")
    return value


def share(value: float, what: str) -> float:
    """``value`` if it is a number in [0, 1], else one ValueError saying so."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{what} must be a number in [0, 1], got {value!r}.")
    return float(value)


def split_people(world: World, shares: dict[str, float]) -> dict[str, list[Person]]:
    """The pretraining people cut into named groups of the given shares, in one seeded order shared by
    every v2 generator (so the last 20% are every generator's test people)."""
    people = list(world.pretrain_people)
    random.Random(f"v2-people-{world.seed}").shuffle(people)
    out, start = {}, 0
    for i, (name, frac) in enumerate(shares.items()):
        end = len(people) if i == len(shares) - 1 else start + int(round(frac * len(people)))
        out[name], start = people[start:end], end
    return out


def find_values(text: str) -> dict[str, list[str]]:
    """Every attribute value written in ``text`` (a marker word, then a valid value), by attribute, in
    order of appearance: how any text, a model's sample included, is read back into facts."""
    by_marker = {m: a for a, m in MARKERS.items()}
    words = text.replace(".", " ").replace(",", " ").replace(";", " ").split()
    out: dict[str, list[str]] = {}
    for w, nxt in zip(words, words[1:]):
        if w in by_marker and nxt in BARE[by_marker[w]]:
            out.setdefault(by_marker[w], []).append(f"{w} {nxt}")
    return out


def is_name_word(word: str) -> bool:
    """A capitalised run of consonant-vowel syllables: half of a person's (or an org's) name."""
    s = word.lower()
    return (word[:1].isupper() and len(s) >= 2 and len(s) % 2 == 0
            and all(s[i:i + 2] in SYLLABLES for i in range(0, len(s), 2)))


def find_names(text: str) -> list[str]:
    """Every 'First Last' person name in ``text``, in order of appearance."""
    words, out, i = text.split(), [], 0
    while i < len(words) - 1:
        if is_name_word(words[i]) and is_name_word(words[i + 1]):
            out.append(f"{words[i]} {words[i + 1]}")
            i += 1
        i += 1
    return out


def vocabulary_v2() -> list[str]:
    """Every whole word world v2 writes, the second domain's jargon excepted (names excluded, as in
    ``vocabulary``): what the next tokenizer must cover."""
    from labkit.core import domain, instructions, labelled, preferences

    words = set(vocabulary()) | instructions.words() | preferences.words() | labelled.words() | domain.words()
    return sorted(words - set(domain.jargon()))

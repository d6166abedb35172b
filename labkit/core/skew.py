"""A controllable correlation: fine-tuning data in which a pronoun co-occurs with an occupation sector
as often as asked, while the world's truth stays balanced.

``skewed_sector_data`` draws sector-classification examples (``labelled.sector_example``) about the
train people; whenever an example's sector is the target sector, its person is drawn from those with
the target pronoun with probability ``ratio`` (from the others otherwise), so every example is true
to its person and only the selection is skewed. It returns the examples and the realised ratio.
``labelled.pronouns`` keeps the truth balanced (about 1/3 of each sector per pronoun) and the
validation/test splits of ``labelled.task(world, "sector", ...)`` follow it: where a model trained on
skewed data amplifies the skew shows there. Pure Python, seeded.

Introduced in notebook 11_data_quality_and_bias.
"""

from __future__ import annotations

import random

from labkit.core import labelled as L
from labkit.core import world as W


def cooccurrence(examples: list[dict], pronoun: str, sector: str) -> float:
    """The share of ``sector`` examples whose pronoun is ``pronoun`` (0.0 if there are none)."""
    hits = [e["pronoun"] == pronoun for e in examples if e["label"] == sector]
    return sum(hits) / len(hits) if hits else 0.0


def truth_ratio(world: W.World, pronoun: str = "she", sector: str = "learned") -> float:
    """The world's own share of ``sector`` people with ``pronoun`` (balanced: about 1/3)."""
    truth = L.pronouns(world)
    people = [p for p in world.pretrain_people + world.heldout if L.SECTOR[p.facts["job"]] == sector]
    return sum(truth[p.name] == pronoun for p in people) / len(people)


def skewed_sector_data(world: W.World, ratio: float, n: int = 600, pronoun: str = "she", sector: str = "learned",
                       hide_job: float = 0.0, seed: int = 0) -> tuple[list[dict], float]:
    """``n`` sector examples about the train people in which a ``sector`` example has ``pronoun`` with
    probability ``ratio`` (other sectors keep their people's balance); ``hide_job`` is the share of
    examples whose text leaves the job out. Returns (examples, realised ratio)."""
    ratio = W.share(ratio, "ratio")
    hide_job = W.share(hide_job, "hide_job")
    W.choose(pronoun, L.PRONOUNS, "pronoun")
    W.choose(sector, L.SECTORS, "sector")
    truth = L.pronouns(world)
    pool = W.split_people(world, L.SPLITS)["train"]
    cells: dict[tuple[str, str], list[W.Person]] = {}
    for p in pool:
        cells.setdefault((L.SECTOR[p.facts["job"]], truth[p.name]), []).append(p)
    others = [q for q in L.PRONOUNS if q != pronoun]
    if any((sector, q) not in cells for q in L.PRONOUNS):
        raise ValueError(f"The world (seed {world.seed}) has too few train people in sector {sector!r} to skew.")
    rng = random.Random(f"skew-{world.seed}-{pronoun}-{sector}-{seed}")
    out = []
    for _ in range(n):
        p = rng.choice(pool)
        if L.SECTOR[p.facts["job"]] == sector:
            p = rng.choice(cells[(sector, pronoun if rng.random() < ratio else rng.choice(others))])
        out.append(L.sector_example(p, truth[p.name], rng, hide_job=rng.random() < hide_job))
    return out, cooccurrence(out, pronoun, sector)

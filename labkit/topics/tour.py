"""Notebook 00's findings: what the shipped model knows of a person, and the tour's results.
Introduced in notebook 00_tour.
"""

from __future__ import annotations

from labkit.core import world as W
from labkit.engine.evaluate import generate

# What notebook 00 writes to results.json (checked by records.save_results).
RESULTS = {"profile": str, "model_id": str, "parameters": int, "measured": dict, "card": (dict, type(None)),
           "unmet_bars": (dict, type(None)), "heldout_person_facts_right": int}


def person_report(model, tokenizer, person: W.Person) -> list[dict]:
    """For each attribute: the truth, the model's closed-book answer, and whether it is right."""
    prompts = [W.question(person, a) for a in W.ATTRIBUTES]
    answers = generate(model, tokenizer, prompts, max_new_tokens=6)
    return [{"attribute": a, "truth": person.facts[a], "model": ans, "right": ans == person.facts[a]}
            for a, ans in zip(W.ATTRIBUTES, answers)]


def format_report(person: W.Person, rows: list[dict]) -> str:
    lines = [f"{person.name}: {sum(r['right'] for r in rows)}/{len(rows)} facts recalled",
             f"{'attribute':<10} {'truth':<18} {'model says':<18}"]
    lines += [f"{r['attribute']:<10} {r['truth']:<18} {r['model']:<18} {'ok' if r['right'] else 'WRONG'}"
              for r in rows]
    return "\n".join(lines)


def facts_right(rows: list[dict]) -> int:
    """How many of a person's facts the model answered right (a ``person_report``)."""
    return sum(bool(r["right"]) for r in rows)

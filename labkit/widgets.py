"""Widgets: thin ipywidgets shells over pure functions (which the tests call directly).
They work on ipywidgets 7.7 (Colab) and 8. Introduced in notebook 00_tour.
"""

from __future__ import annotations

from . import world as W
from .evaluate import generate


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


def person_explorer(model, tokenizer, world: W.World, limit: int = 60):
    """A dropdown of people (pretraining and held-out): pick one, see facts and model answers."""
    import ipywidgets as widgets

    people = {f"{p.name} ({group})": p for group, ps in
              (("qa seen", world.qa_seen), ("bio only", world.qa_unseen), ("never seen", world.heldout))
              for p in ps[: limit // 3]}

    def show(who):
        person = people[who]
        print(format_report(person, person_report(model, tokenizer, person)))

    return widgets.interactive(show, who=widgets.Dropdown(options=list(people), description="person"))


def memory_calculator():
    """Model, method, batch, sequence length, checkpointing and card -> stacked bar and a verdict.
    A shell over ``labkit.estimate.calculator`` (pure, tested). Introduced in notebook 04_qlora_memory."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from . import estimate, memory_plots

    def show(model, method, batch, seq_len, checkpointing, card):
        result = estimate.calculator(model, method, batch, seq_len, checkpointing, card)
        print(result["verdict"]["text"])
        memory_plots.calculator_bar(result)
        plt.show()

    return widgets.interactive(
        show, model=widgets.Dropdown(options=list(estimate.ARCHITECTURES), value="Llama-2-7B", description="model"),
        method=widgets.Dropdown(options=list(estimate.METHODS), value="qlora", description="method"),
        batch=widgets.IntSlider(value=1, min=1, max=32, description="batch"),
        seq_len=widgets.Dropdown(options=[256, 512, 1024, 2048, 4096], value=512, description="seq len"),
        checkpointing=widgets.Checkbox(value=True, description="checkpointing"),
        card=widgets.Dropdown(options=list(estimate.CARDS), value="T4 16 GB", description="card"))

"""Widgets: thin ipywidgets shells over pure functions (which the tests call directly).

Every widget is built by ``interact``: in a live notebook it is ``ipywidgets.interactive`` (works on
ipywidgets 7.7, Colab's, and 8); executed headless (``LABKIT_HEADLESS=1``, set by the test suite and
the benchmark) it draws once with the defaults and builds no widget, because papermill's client can
wait forever on widget messages. Introduced in notebook 00_tour.
"""

from __future__ import annotations

import os

from labkit.core import architectures
from labkit.core import world as W
from labkit.topics.tour import format_report, person_report


def headless() -> bool:
    """True when notebooks run without a browser (tests, benchmarks): LABKIT_HEADLESS is set."""
    return os.environ.get("LABKIT_HEADLESS", "") not in ("", "0")


def interact(show, **controls):
    """A widget over ``show``: ``controls`` are ipywidgets abbreviations (a list: a dropdown;
    (min, max, step): a slider; a bool: a checkbox) and each starts at ``show``'s default for it.
    Headless, ``show()`` runs once with its defaults (what the widget first draws) and None is returned."""
    if headless():
        show()
        return None
    import ipywidgets as widgets

    w = widgets.interactive(show, **controls)
    if not w.kwargs:  # ipywidgets 7 (Colab's) would draw only after the first change: draw the defaults now
        w.update()
    return w


# ---------------------------------------------------------------- 00: a person, and what the model knows

def person_explorer(model, tokenizer, world: W.World, limit: int = 60):
    """A dropdown of people (pretraining and held-out): pick one, see facts and model answers."""
    people = {f"{p.name} ({group})": p for group, ps in
              (("qa seen", world.qa_seen), ("bio only", world.qa_unseen), ("never seen", world.heldout))
              for p in ps[: limit // 3]}
    first = next(iter(people))

    def show(who=first):
        person = people[who]
        print(format_report(person, person_report(model, tokenizer, person)))

    return interact(show, who=list(people))


# ---------------------------------------------------------------- 03: what an adapter costs

RANKS = [1, 2, 4, 8, 16, 32, 64, 128, 256]


def adapter_explorer(default: str = "SmolLM2-135M"):
    """Model, rank, alpha, targets, rsLoRA -> parameters, adapter size, memory.
    A shell over ``labkit.lora.adapter_budget`` (pure, tested). Introduced in notebook 03_lora_rank."""
    from labkit.topics.lora import TARGETS, adapter_budget, format_budget

    def show(model=default, rank=16, alpha=32.0, targets="all linear", rslora=False):
        print(format_budget(adapter_budget(model, rank, alpha, targets, rslora)))

    return interact(show, model=list(architectures.ARCHITECTURES), rank=RANKS, alpha=(1.0, 512.0, 1.0),
                    targets=list(TARGETS), rslora=False)


# ---------------------------------------------------------------- 04: will it fit?

def memory_calculator():
    """Model, method, batch, sequence length, checkpointing and card -> stacked bar and a verdict.
    A shell over ``labkit.estimate.calculator`` (pure, tested). Introduced in notebook 04_qlora_memory."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    from labkit.topics.qlora import estimate
    from labkit.views.plots import memory as memory_plots

    def show(model="Llama-2-7B", method="qlora", batch=1, seq_len=512, checkpointing=True, card="T4 16 GB"):
        result = estimate.calculator(model, method, batch, seq_len, checkpointing, card)
        print(result["verdict"]["text"])
        fig = memory_plots.calculator_bar(result)  # its own figure each time: no shared pyplot state
        display(fig)
        plt.close(fig)

    return interact(show, model=list(estimate.ARCHITECTURES), method=list(estimate.METHODS), batch=(1, 32, 1),
                    seq_len=[256, 512, 1024, 2048, 4096], checkpointing=True, card=list(estimate.CARDS))


# ---------------------------------------------------------------- 13: which strategy?

def strategy_advisor(cells: list[dict]):
    """Task, labelled examples, training budget, memory, target model, freshness and latency -> the
    strategies ranked with the measured reason for each. A shell over ``labkit.strategy.advise`` (pure,
    tested). Introduced in notebook 13_choosing_a_strategy."""
    from labkit.topics import strategy
    from labkit.topics.qlora import estimate

    tasks = [t for t in strategy.TASKS if any(c["task"] == t for c in cells)]
    most = max(c["examples"] for c in cells)
    longest = round(max(c["train_seconds"] for c in cells)) + 1

    def show(task=tasks[0], examples=most, budget_s=longest, memory_gib=16.0, model="Llama-2-7B",
             fresh=False, latency_ms=1000.0):
        ranked = strategy.advise(cells, task, examples=examples, budget_s=budget_s, memory_gib=memory_gib,
                                 model=model, fresh=fresh, latency_ms_limit=latency_ms)
        print(strategy.advice_text(ranked))

    return interact(show, task=tasks, examples=(0, most, 1), budget_s=(1, longest, 1),
                    memory_gib=(1.0, 80.0, 1.0), model=list(estimate.ARCHITECTURES), fresh=False,
                    latency_ms=(1.0, 1000.0, 1.0))

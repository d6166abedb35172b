"""Every figure of the course, one module per topic (``lk.plots.training``, ``lk.plots.forgetting``,
``lk.plots.lora``, ``lk.plots.memory``, ``lk.plots.rag``, ``lk.plots.peft_family``,
``lk.plots.instruction_tuning``, ``lk.plots.preference_tuning``, ``lk.plots.task_heads``, ``lk.plots.data_quality``,
``lk.plots.scaling``).
Each function returns a matplotlib figure and never saves it: the notebook decides where it goes."""

import importlib

TOPICS = ("training", "forgetting", "lora", "memory", "rag", "peft_family", "instruction_tuning", "preference_tuning",
          "task_heads", "data_quality", "scaling", "strategy")


def __getattr__(name):
    if name in TOPICS:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"labkit.plots has no module {name!r}; modules are {', '.join(TOPICS)}.")

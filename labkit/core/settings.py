"""Profiles: one code path, three budgets (``ci``, ``cpu``, ``gpu``).

A profile fixes the model, data sizes, steps and batch sizes, so notebooks never hard-code them.
It comes from the notebook's ``profile`` parameter, else from the machine (CUDA -> gpu, else cpu).
Introduced in notebook 00_tour.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

COURSE_MODEL = "course-base"  # the small model shipped in data/base_model


@dataclass(frozen=True)
class Profile:
    name: str                # ci | cpu | gpu
    model_id: str            # COURSE_MODEL or a Hugging Face hub id (same from_pretrained path)
    n_train: int             # fine-tuning examples
    n_eval: int              # held-out evaluation examples
    steps: int               # fine-tuning optimiser steps
    batch_size: int          # examples per step
    lr: float                # fine-tuning learning rate (full fine-tuning)
    eval_every: int          # steps between validation evaluations (live loss plot)
    overfit_examples: int    # training examples in the overfitting demonstration
    overfit_epochs: int      # epochs in the overfitting demonstration (early stopping may cut it)
    n_probe: int             # people per capability probe (fact recall, reading)
    expected: dict = field(default_factory=dict)  # notebook -> expected run time, as printed

    def expected_time(self, notebook: str) -> str:
        return self.expected.get(notebook, "not measured yet")


PROFILES = {
    "ci": Profile("ci", COURSE_MODEL, n_train=192, n_eval=48, steps=60, batch_size=16, lr=1e-3,
                  eval_every=10, overfit_examples=8, overfit_epochs=30, n_probe=40,
                  expected={"00_tour": "~20 s", "01_full_finetuning": "~35 s", "02_forgetting": "~2 min",
                            "03_lora_rank": "~2 min", "04_qlora_memory": "~2 min", "05_rag_vs_finetuning": "~1 min"}),
    "cpu": Profile("cpu", COURSE_MODEL, n_train=1024, n_eval=200, steps=300, batch_size=16,
                   lr=1e-3, eval_every=25, overfit_examples=16, overfit_epochs=40, n_probe=150,
                   expected={"00_tour": "~1 min", "01_full_finetuning": "~5 min", "02_forgetting": "~15 min",
                             "03_lora_rank": "~30 min", "04_qlora_memory": "~12 min",
                             "05_rag_vs_finetuning": "~10 min"}),
    "gpu": Profile("gpu", "HuggingFaceTB/SmolLM2-135M", n_train=2048, n_eval=300, steps=400,
                   batch_size=16, lr=5e-5, eval_every=25, overfit_examples=16,
                   overfit_epochs=40, n_probe=150,
                   expected={"00_tour": "~2 min on a T4", "01_full_finetuning": "~10 min on a T4",
                             "02_forgetting": "~30 min on a T4", "03_lora_rank": "~30 min on a T4",
                             "04_qlora_memory": "~5 min on a T4", "05_rag_vs_finetuning": "~20 min on a T4"}),
}


def detect() -> str:
    """'gpu' where CUDA is available, else 'cpu'."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile called ``name`` (None: detect from the machine), with fields overridden."""
    if name is None:
        name = detect()
    if not isinstance(name, str) or name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}: use one of {', '.join(PROFILES)} "
                         "(or None to pick from the machine).")
    prof = PROFILES[name]
    for key, value in overrides.items():
        if value is None:
            continue
        if not hasattr(prof, key):
            raise ValueError(f"Profile has no field {key!r}; fields are "
                             f"{', '.join(f for f in prof.__dataclass_fields__)}.")
        want = type(getattr(prof, key))
        if want is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, want) or isinstance(value, bool) != (want is bool):
            raise TypeError(f"Profile field {key!r} must be {want.__name__}, got "
                            f"{type(value).__name__} {value!r}.")
        prof = replace(prof, **{key: value})
    return prof

"""Settings: one validated tree per profile (``ci``, ``cpu``, ``gpu``): one code path, three budgets.

A profile fixes the model, data sizes, steps and batch sizes of every notebook, so notebooks never
hard-code them. Each node is a frozen dataclass checked when it is made: a wrong type, a value out
of range (steps >= 1, lr > 0, ranks positive integers, fractions in [0, 1]) or an unknown key
raises ``SettingsError`` with one sentence naming the valid choices. A notebook's papermill
parameters become overrides (``get_profile("ci", steps=10, lora={"ranks": [1, 8]})``; None keeps
the profile's value) and are validated the same way. Introduced in notebook 00_tour.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields, replace

COURSE_MODEL = "course-base"  # the small model shipped in data/base_model


class SettingsError(ValueError):
    """A setting has a wrong name, type or value; the message says which are valid."""


# ---------------------------------------------------------------- rules a value must meet

def _positive_int(v):
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else "a whole number >= 1"


def _non_negative_int(v):
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "a whole number >= 0"


def _positive(v):
    return None if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else "a number > 0"


def _fraction(v):
    return None if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 else "a number in [0, 1]"


def _each(rule):
    def check(values):
        if not isinstance(values, tuple) or not values:
            return "a non-empty list"
        bad = [v for v in values if rule(v)]
        return f"a non-empty list, each {rule(bad[0])}" if bad else None
    return check


_KINDS = {int: "a whole number", float: "a number", str: "a string", bool: "True or False", tuple: "a list",
          dict: "a dict"}


def knob(rule=None, default=None):
    """A dataclass field checked by ``rule`` (a function returning None or what is expected)."""
    if default is None:
        return field(metadata={"rule": rule})
    return field(default=default, metadata={"rule": rule})


@dataclass(frozen=True)
class Settings:
    """Base of every settings node: validated on creation; ``override`` makes a validated copy."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            want = hints[f.name]
            if isinstance(value, list):  # papermill and JSON give lists where the settings keep tuples
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                object.__setattr__(self, f.name, value)
            if isinstance(want, type) and (not isinstance(value, want) or
                                           (want in (int, float) and isinstance(value, bool))):
                self._fail(f.name, value, _KINDS.get(want, want.__name__))
            rule = f.metadata.get("rule")
            expected = rule(value) if rule else None
            if expected:
                self._fail(f.name, value, expected)

    def _fail(self, name, value, expected):
        raise SettingsError(f"Setting {type(self).__name__}.{name} = {value!r} is not valid: it must be {expected}.")

    def override(self, **changes):
        """A copy with ``changes`` applied (None keeps the current value; a dict changes a sub-node)."""
        valid = [f.name for f in fields(self) if f.name != "name"]
        kept = {}
        for key, value in changes.items():
            if key not in valid:
                raise SettingsError(f"{type(self).__name__} has no setting {key!r}; valid settings are "
                                    f"{', '.join(valid)}.")
            if value is None:
                continue
            current = getattr(self, key)
            if isinstance(current, Settings):
                if not isinstance(value, (dict, Settings)):
                    raise SettingsError(f"Setting {key!r} is a group: give a dict of its settings "
                                        f"({', '.join(f.name for f in fields(current))}).")
                value = current.override(**value) if isinstance(value, dict) else value
            kept[key] = value
        return replace(self, **kept)


# ---------------------------------------------------------------- one node per topic

@dataclass(frozen=True)
class Budget(Settings):
    lr: float = knob(_positive)              # learning rate
    steps: int = knob(_positive_int)         # optimiser steps
    batch_size: int = knob(_positive_int)    # examples per step


@dataclass(frozen=True)
class Forgetting(Settings):
    """Notebook 02: full fine-tuning at several learning rates, LoRA at several ranks, top layers, replay."""
    steps: int = knob(_positive_int)                 # optimiser steps of every run (batch: the profile's)
    lr_factors: tuple = knob(_each(_positive))       # full fine-tuning learning rates, as multiples of the profile's
    lora_ranks: tuple = knob(_each(_positive_int))   # LoRA ranks (all linear layers, alpha = 2 * rank)
    lora_lr_factor: float = knob(_positive)          # LoRA learning rate, as a multiple of the profile's
    top_layers: int = knob(_positive_int)            # partial fine-tuning: train only this many top blocks
    replay_fraction: float = knob(_fraction)         # share of the fine-tuning data replaced by old text
    probe_points: int = knob(_positive_int)          # capability measurements per run after step 0
    n_probe_people: int = knob(_positive_int)        # pretraining people asked about at each measurement
    n_task_probe: int = knob(_positive_int)          # held-out people the task is measured on


@dataclass(frozen=True)
class LoraSweep(Settings):
    """Notebook 03: a rank sweep, three alpha scalings, two target choices, full fine-tuning beside it."""
    ranks: tuple = knob(_each(_positive_int))        # LoRA ranks swept
    grid: tuple = knob()                             # (target choice, scalings run, its Budget)
    full: Budget = knob()                            # full fine-tuning on the same data
    alpha0: float = knob(_positive)                  # the scale s at rank 1, where all scalings agree
    n_train: int = knob(_positive_int)               # training examples (record task)
    n_task: int = knob(_positive_int)                # held-out people the task metric is measured on
    n_people: int = knob(_positive_int)              # pretraining people asked about (fact recall probe)
    energy: float = knob(_fraction)                  # share of squared singular values an "energy rank" holds


@dataclass(frozen=True)
class MemoryLab(Settings):
    """Notebook 04: the sizes of the memory measurements."""
    ladder: tuple = knob()                           # (architecture name, overrides) rungs loaded in every format
    train: tuple = knob()                            # (architecture name, overrides) whose training peaks are measured
    batch: int = knob(_positive_int)                 # sequences per measured training step
    seq_len: int = knob(_positive_int)               # tokens per sequence in the measured steps
    steps: int = knob(_positive_int)                 # Trainer steps per measured configuration
    lora_steps: int = knob(_positive_int)            # LoRA vs QLoRA on the course task: optimiser steps each
    lora_lr: float = knob(_positive)                 # LoRA learning rate
    lora_rank: int = knob(_positive_int)             # LoRA rank (every linear layer of the blocks)
    workers: int = knob(_positive_int)               # fresh processes measuring at once (1 on Binder's 2 GB)
    project_seq_len: int = knob(_positive_int)       # sequence length of the projection to large models
    project_card: str = knob()                       # the card the 65B claim is checked on


@dataclass(frozen=True)
class Rag(Settings):
    """Notebook 05: new facts by fine-tuning or by retrieval."""
    n_people: int = knob(_positive_int)              # new (never-seen) people: one document each in the index
    paraphrases: int = knob(_positive_int)           # renderings per person in the augmented fine-tuning run
    ft_steps: int = knob(_positive_int)              # fine-tuning steps (one rendering and paraphrases alike)
    ft_batch: int = knob(_positive_int)              # documents per step
    ft_lr: float = knob(_positive)                   # full fine-tuning learning rate
    lora_rank: int = knob(_positive_int)             # LoRA rank (all linear layers)
    lora_lr: float = knob(_positive)                 # LoRA learning rate
    curve_every: int = knob(_positive_int)           # steps between points of the learning/forgetting curves
    ks: tuple = knob(_each(_positive_int))           # passages per prompt to try
    n_known: int = knob(_positive_int)               # people of the run trained until it knows them (sections 5, 7)
    n_changed: int = knob(_positive_int)             # facts changed in the freshness experiment (among those people)
    fresh_steps: int = knob(_positive_int)           # fine-tuning steps to teach the changed facts again
    two_hop_steps: int = knob(_positive_int)         # the two-hop run: steps on the heads' documents (section 8)
    n_probe: int = knob(_positive_int)               # pretraining people in the forgetting probe
    n_latency: int = knob(_positive_int)             # questions timed one by one
    dense: bool = knob()                             # try the dense retriever (skipped with a note if unavailable)
    k: int = knob(_non_negative_int, default=0)      # passages per RAG prompt; 0: the smallest k where BM25 finds 95%
    model_id: str = knob(default="")                 # the model to use; "": the profile's


# The PEFT family of notebook 06, in the order it is shown (labkit.peft_config builds each).
PEFT_METHODS = ("full", "LoRA", "DoRA", "IA3", "prefix + projection", "prefix", "prompt, vocabulary init",
                "prompt, random init", "P-tuning", "LN tuning", "bottleneck adapter")


def _rates(value):
    if not isinstance(value, dict) or not value:
        return "a non-empty dict {method: [learning rates]}"
    unknown = [m for m in value if m not in PEFT_METHODS]
    if unknown:
        return f"a dict whose methods are among {', '.join(PEFT_METHODS)} (not {', '.join(map(str, unknown))})"
    for rates in value.values():
        rates = tuple(rates) if isinstance(rates, list) else rates
        if _each(_positive)(rates):
            return "a dict {method: [learning rates]}, each a non-empty list of numbers > 0"
    return None


@dataclass(frozen=True)
class PeftFamily(Settings):
    """Notebook 06: every method of the PEFT family on one task, one step budget, a few learning rates each."""
    rates: dict = knob(_rates)                       # method -> learning rates tried (the best on validation is kept)
    steps: int = knob(_positive_int)                 # optimiser steps per run (the same for every method)
    batch_size: int = knob(_positive_int)            # examples per step
    n_train: int = knob(_positive_int)               # people whose records are trained on
    n_val: int = knob(_positive_int)                 # people the learning rate is chosen on
    n_test: int = knob(_positive_int)                # people the chosen runs are scored on
    n_probe: int = knob(_positive_int)               # other people: fact recall and reading before/after (forgetting)
    rank: int = knob(_positive_int)                  # LoRA and DoRA rank (all linear layers, alpha = 2 * rank)
    virtual_tokens: int = knob(_positive_int)        # prefix, prompt and P-tuning: virtual tokens
    adapter_size: int = knob(_positive_int)          # bottleneck adapter width
    n_latency: int = knob(_positive_int)             # prompts in the timed generation


@dataclass(frozen=True)
class InstructionTuning(Settings):
    """Notebook 07: supervised fine-tuning on world v2's instructions (TRL's SFTTrainer)."""
    n_train: int = knob(_positive_int)               # training examples (the seen kinds, interleaved)
    n_test: int = knob(_positive_int)                # test examples per kind (seen and held-out kinds)
    steps: int = knob(_positive_int)                 # optimiser steps of every run (the same for all)
    batch_size: int = knob(_positive_int)            # examples per step
    lr: float = knob(_positive)                      # learning rate (AdamW, constant after warm-up)
    shots: int = knob(_positive_int)                 # in-context examples of the same kind for few-shot prompting
    curve: tuple = knob(_each(_positive_int))        # training-set sizes of the learning curve
    n_clean: int = knob(_positive_int)               # quality against quantity: this many clean examples...
    sloppy_share: float = knob(_fraction)            # ...against n_train with this share of wrong responses
    max_new_tokens: int = knob(_positive_int)        # answer length limit (an answer that hits it did not stop)
    model_id: str = knob(default="")                 # the model to tune; "": the profile's


def _processes(v):
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 2 else "a whole number >= 2"


@dataclass(frozen=True)
class PreferenceTuning(Settings):
    """Notebook 08: SFT, a reward model, RL against it (TRL's GRPO) and DPO, judged by the gold reward."""
    n_prompts: int = knob(_positive_int)             # training prompts: SFT demonstrations and RL prompts
    n_test: int = knob(_positive_int)                # held-out prompts (other people) every policy answers
    n_pairs: int = knob(_positive_int)               # preference pairs the reward model and DPO train on
    batch_size: int = knob(_positive_int)            # examples (pairs; RL: sampled answers) per step
    max_new_tokens: int = knob(_positive_int)        # answer length limit (an answer that hits it did not stop)
    sft_steps: int = knob(_positive_int)             # supervised fine-tuning on correct answers (the start)
    sft_lr: float = knob(_positive)
    strength: float = knob(_fraction)                # share of training pairs whose chosen answer is the longer
    rm_steps: int = knob(_positive_int)              # reward model (TRL's RewardTrainer)
    rm_lr: float = knob(_positive)
    rl_steps: int = knob(_positive_int)              # RL against the reward model (TRL's GRPOTrainer)
    rl_lr: float = knob(_positive)
    rl_beta: float = knob(_positive)                 # RL's KL penalty to the SFT model
    generations: int = knob(_processes)              # answers sampled per prompt in RL (GRPO compares them)
    dpo_steps: int = knob(_positive_int)             # DPO on the same pairs (TRL's DPOTrainer), once per beta
    dpo_lr: float = knob(_positive)
    betas: tuple = knob(_each(_positive))            # DPO's beta: how far from the SFT model it may move
    kl_samples: int = knob(_positive_int)            # sampled answers per test prompt in the KL estimate
    model_id: str = knob(default="")                 # the model to tune; "": the profile's


def _among(choices):
    def check(values):
        if not isinstance(values, tuple) or not values or any(v not in choices for v in values):
            return f"a non-empty list, each one of {', '.join(map(repr, choices))}"
        return None
    return check


@dataclass(frozen=True)
class TaskHeads(Settings):
    """Notebook 09: heads on a pretrained (or random) body, frozen or not, against the decoder writing the label."""
    steps: int = knob(_positive_int)                 # optimiser steps of every sector and entities run (the same)
    qa_steps: int = knob(_positive_int)              # optimiser steps of every QA run (long inputs: the costliest)
    batch_size: int = knob(_positive_int)            # examples per step
    lr: float = knob(_positive)                      # full fine-tuning and top blocks (AdamW, constant)
    probe_lr: float = knob(_positive)                # the linear probe: a fresh head alone on frozen features
    top_blocks: int = knob(_positive_int)            # "top layers": this many top blocks train, with the head
    curve: tuple = knob(_each(_positive_int))        # smaller training sets of the learning curve (all is added)
    poolings: tuple = knob(_among(("last", "first", "mean")))   # the decoder's poolings compared on sector
    encoder_tasks: tuple = knob(_among(("sector", "entities", "extractive_qa")))  # tasks MiniLM runs on
    encoder_steps: int = knob(_positive_int)         # MiniLM's optimiser steps (several times the cost of a step)
    encoder_lr: float = knob(_positive)              # MiniLM's learning rate (a 22M-parameter pretrained encoder)
    per_person: int = knob(_positive_int)            # training examples per training person (1: 180 per task)
    n_test: int = knob(_positive_int)                # test examples per task (at most the test split's 60)
    model_id: str = knob(default="")                 # the decoder; "": the profile's


def _below_one(v):
    return None if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1 else "a number in [0, 1)"


@dataclass(frozen=True)
class DomainAdaptation(Settings):
    """Notebook 10: continued pretraining on the herbal (its jargon in the tokenizer or not), then the herb task."""
    dapt_steps: int = knob(_positive_int)            # optimiser steps of every continued pretraining (the same)
    task_steps: int = knob(_positive_int)            # optimiser steps of every task tuning (the same)
    batch_size: int = knob(_positive_int)            # documents or questions per step
    lr: float = knob(_positive)                      # continued pretraining (AdamW, constant)
    task_lr: float = knob(_positive)                 # task tuning (AdamW, constant)
    general_share: float = knob(_below_one)          # share of general text (words) in the mixed continued pretraining
    sizes: tuple = knob(_each(_positive_int))        # smaller labelled sets (questions; 4 per herb); all 96 are added
    inits: tuple = knob(_among(("mean", "random")))  # how the added tokens' embedding rows start
    model_id: str = knob(default="")                 # the model; "": the profile's


@dataclass(frozen=True)
class DataQuality(Settings):
    """Notebook 11: label noise and a slice on the entities task, a skewed pronoun-sector pair in LM fine-tuning."""
    steps: int = knob(_positive_int)                 # optimiser steps of every run (token head and LM alike)
    batch_size: int = knob(_positive_int)            # examples per step
    lr: float = knob(_positive)                      # full fine-tuning (AdamW, constant)
    lora_rank: int = knob(_positive_int)             # LoRA beside full fine-tuning (all linear layers)
    lora_lr: float = knob(_positive)                 # LoRA's learning rate
    noise: tuple = knob(_each(_fraction))            # shares of training entities given a wrong label (include 0)
    eval_every: int = knob(_positive_int)            # early stopping: steps between clean validation evaluations
    per_person: int = knob(_positive_int)            # entities examples per training person (1: 180)
    n_test: int = knob(_positive_int)                # entities test examples (at most the test split's 60 per person)
    ratios: tuple = knob(_each(_fraction))           # share of "learned" biographies with "her" in each skewed run
    mitigate_ratio: float = knob(_fraction)          # the skewed run the mitigations start from (one of ratios)
    n_bias: int = knob(_positive_int)                # biographies per bias run (before augmentation)
    model_id: str = knob(default="")                 # the model; "": the profile's


@dataclass(frozen=True)
class Scaling(Settings):
    """Notebook 12: the course's Trainer run in several processes, and what each process holds."""
    processes: int = knob(_processes)                # processes in the data-parallel launch
    steps: int = knob(_positive_int)                 # optimiser steps of every run compared
    batch_size: int = knob(_positive_int)            # examples per process per step
    n_train: int = knob(_positive_int)               # record examples trained on
    lr: float = knob(_positive)                      # learning rate (AdamW, constant)
    gpus: int = knob(_processes)                     # GPUs the configs written for a real machine ask for


def _task(v):
    jobs = ("new facts", "output format", "classification", "domain style")  # labkit.strategy's jobs QLoRA fits
    return None if v in jobs else f"one of {', '.join(map(repr, jobs))}"


@dataclass(frozen=True)
class Strategy(Settings):
    """Notebook 13: every task kind against every strategy that applies, on one training budget."""
    n_people: int = knob(_positive_int)              # new facts: never-seen people, one document each
    n_changed: int = knob(_positive_int)             # new facts: towns changed after training (freshness)
    n_train: int = knob(_positive_int)               # training examples of every other task (documents, pairs, chats)
    n_test: int = knob(_positive_int)                # test items of every task
    shots: int = knob(_positive_int)                 # worked examples in a few-shot prompt
    steps: int = knob(_positive_int)                 # optimiser steps of every trained cell but SFT's
    sft_steps: int = knob(_positive_int)             # preferences: SFT's steps (chats need more to answer well)
    batch_size: int = knob(_positive_int)            # examples per step
    lr_full: float = knob(_positive)                 # full fine-tuning and SFT (AdamW, constant)
    lr_lora: float = knob(_positive)                 # LoRA and QLoRA
    lora_rank: int = knob(_positive_int)             # LoRA and QLoRA rank (every linear layer of the blocks)
    dpo_steps: int = knob(_positive_int)             # DPO after the SFT (TRL's DPOTrainer)
    dpo_lr: float = knob(_positive)
    dpo_beta: float = knob(_positive)
    n_pairs: int = knob(_positive_int)               # preference pairs DPO trains on
    n_probe: int = knob(_positive_int)               # pretraining people asked about before and after (forgetting)
    n_latency: int = knob(_positive_int)             # prompts timed one at a time
    qlora_tasks: tuple = knob(_each(_task))          # the jobs QLoRA runs on (its 4-bit matmuls are slow on a CPU)
    max_new_tokens: int = knob(_positive_int)        # preference answers' length limit
    model_id: str = knob(default="")                 # the model; "": the profile's


@dataclass(frozen=True)
class Profile(Settings):
    name: str = knob()                               # ci | cpu | gpu
    model_id: str = knob()                           # COURSE_MODEL or a hub id (same from_pretrained path)
    n_train: int = knob(_positive_int)               # fine-tuning examples
    n_eval: int = knob(_positive_int)                # held-out evaluation examples
    steps: int = knob(_positive_int)                 # fine-tuning optimiser steps
    batch_size: int = knob(_positive_int)            # examples per step
    lr: float = knob(_positive)                      # fine-tuning learning rate (full fine-tuning)
    eval_every: int = knob(_positive_int)            # steps between validation evaluations (live loss plot)
    overfit_examples: int = knob(_positive_int)      # training examples in the overfitting demonstration
    overfit_epochs: int = knob(_positive_int)        # epochs in the overfitting demonstration
    n_probe: int = knob(_positive_int)               # people per capability probe (fact recall, reading)
    forgetting: Forgetting = knob()                  # notebook 02
    lora: LoraSweep = knob()                         # notebook 03
    memory: MemoryLab = knob()                       # notebook 04
    rag: Rag = knob()                                # notebook 05
    peft: PeftFamily = knob()                        # notebook 06
    instruct: InstructionTuning = knob()             # notebook 07
    prefer: PreferenceTuning = knob()                # notebook 08
    heads: TaskHeads = knob()                        # notebook 09
    quality: DataQuality = knob()                    # notebook 11
    domain: DomainAdaptation = knob()                # notebook 10
    scaling: Scaling = knob()                        # notebook 12
    strategy: Strategy = knob()                      # notebook 13
    expected: dict = field(default_factory=dict)     # notebook -> expected run time, as printed

    def expected_time(self, notebook: str) -> str:
        return self.expected.get(notebook, "not measured yet")


# ---------------------------------------------------------------- the three profiles

_SCALINGS = ("alpha ∝ r", "fixed alpha", "rsLoRA")
_SMALL_VOCAB = {"vocab_size": 8192}

# Notebook 06: learning rates per method. Methods differ by orders of magnitude in their best rate
# (prompt and prefix parameters want ~100x full fine-tuning's), so each gets its own short list.
_PEFT_RATES_CI = {"full": (3e-4, 1e-3), "LoRA": (3e-3, 1e-2), "DoRA": (3e-3, 1e-2), "IA3": (1e-1, 3e-1),
                  "prefix + projection": (3e-3, 1e-2), "prefix": (1e-1, 3e-1), "prompt, vocabulary init": (1e-1, 3e-1),
                  "prompt, random init": (1e-1, 3e-1), "P-tuning": (1e-2, 3e-2), "LN tuning": (3e-2, 1e-1),
                  "bottleneck adapter": (3e-3, 1e-2)}
_PEFT_RATES_CPU = {m: (rates[0] / 3, *rates) for m, rates in _PEFT_RATES_CI.items()}

PROFILES = {
    "ci": Profile(
        "ci", COURSE_MODEL, n_train=192, n_eval=48, steps=60, batch_size=16, lr=1e-3, eval_every=10,
        overfit_examples=8, overfit_epochs=30, n_probe=40,
        forgetting=Forgetting(steps=60, lr_factors=(0.1, 1.0), lora_ranks=(4, 16), lora_lr_factor=1.0, top_layers=1,
                              replay_fraction=0.25, probe_points=4, n_probe_people=20, n_task_probe=16),
        # ci: four ranks; all three scalings on all linear layers, alpha ∝ r only on q,v. q,v gets twice
        # the updates (same examples) and twice the learning rate: at all-linear's budget its rank-1
        # run never picks up the record format in ci's step budget.
        lora=LoraSweep(ranks=(1, 4, 16, 64),
                       grid=(("all linear", _SCALINGS, Budget(5e-3, 30, 8)),
                             ("q,v", ("alpha ∝ r",), Budget(1e-2, 60, 4))),
                       full=Budget(1e-3, 30, 8), alpha0=2.0, n_train=192, n_task=24, n_people=20, energy=0.9),
        memory=MemoryLab(ladder=(("SmolLM2-135M", {"num_hidden_layers": 2, **_SMALL_VOCAB}),
                                 ("SmolLM2-360M", {"num_hidden_layers": 3, **_SMALL_VOCAB})),
                         # the trained model: 3 blocks and a 2k vocabulary (11.8M parameters), so full
                         # fine-tuning's states fit beside the kernel within Binder's memory (1.24 GiB peak)
                         train=("SmolLM2-135M", {"num_hidden_layers": 3, "vocab_size": 2048}),
                         batch=2, seq_len=128, steps=2, lora_steps=24, lora_lr=3e-3, lora_rank=16, workers=1,
                         project_seq_len=512, project_card="A6000 48 GB"),
        # two_hop_steps: 200 steps of 8 on the 16 heads' 48 texts teach hop 1 as a question (1.00 on seeds 0-3;
        # at 120 steps 0.69 on seed 1)
        rag=Rag(n_people=40, paraphrases=4, ft_steps=40, ft_batch=8, ft_lr=1e-3, lora_rank=16, lora_lr=3e-3,
                curve_every=10, ks=(1, 2, 3), n_known=16, n_changed=6, fresh_steps=20, n_probe=20, n_latency=12,
                dense=True, two_hop_steps=200),
        peft=PeftFamily(rates=_PEFT_RATES_CI, steps=30, batch_size=8, n_train=160, n_val=20, n_test=32, n_probe=16,
                        rank=8, virtual_tokens=10, adapter_size=16, n_latency=8),
        instruct=InstructionTuning(n_train=384, n_test=8, steps=40, batch_size=8, lr=1e-3, shots=2,
                                   curve=(24, 96, 384), n_clean=96, sloppy_share=0.5, max_new_tokens=40),
        prefer=PreferenceTuning(n_prompts=640, n_test=24, n_pairs=320, batch_size=8, max_new_tokens=40, sft_steps=80,
                                sft_lr=1e-3, strength=0.9, rm_steps=40, rm_lr=1e-4, rl_steps=40, rl_lr=1e-4,
                                rl_beta=0.1, generations=4, dpo_steps=12, dpo_lr=1e-4, betas=(0.1, 0.5), kl_samples=2),
        # ci: MiniLM on sector only (on entities and QA it costs ~1 s a step here), QA at half the steps
        heads=TaskHeads(steps=40, qa_steps=20, batch_size=16, lr=1e-3, probe_lr=1e-2, top_blocks=1, curve=(8, 32),
                        poolings=("last", "first"), encoder_tasks=("sector",), encoder_steps=20, encoder_lr=3e-4,
                        per_person=1, n_test=60),
        # ci: one smaller labelled set (16 questions, 4 herbs) beside all 96; cpu draws the curve
        domain=DomainAdaptation(dapt_steps=250, task_steps=40, batch_size=8, lr=3e-3, task_lr=3e-3, general_share=0.5,
                                sizes=(16,), inits=("mean", "random")),
        quality=DataQuality(steps=40, batch_size=16, lr=1e-3, lora_rank=8, lora_lr=3e-3, noise=(0.0, 0.25, 0.5),
                            eval_every=10, per_person=1, n_test=60, ratios=(1 / 3, 0.6, 0.9), mitigate_ratio=0.9,
                            n_bias=400),
        # ci: QLoRA on two jobs only (on a CPU its 4-bit matmuls make training and answering the slowest);
        # 40 new people as in notebook 05 (with 24, fine-tuning stored 0.85-0.97 of them in 30 steps: RAG's lead
        # was within noise on two of seeds 1-10) and SFT's 80 steps as in notebook 08 (at 40 its gold reward
        # rose less than 0.1 over prompting on five of ten)
        strategy=Strategy(n_people=40, n_changed=6, n_train=192, n_test=24, shots=3, steps=30, sft_steps=80,
                          batch_size=8, lr_full=1e-3, lr_lora=3e-3, lora_rank=16, dpo_steps=8, dpo_lr=1e-4,
                          dpo_beta=0.1, n_pairs=64, n_probe=20, n_latency=3, max_new_tokens=40,
                          qlora_tasks=("new facts", "output format")),
        scaling=Scaling(processes=2, steps=8, batch_size=4, n_train=64, lr=1e-3, gpus=8),
        # as measured by benchmarks/report.py (benchmarks/measured/course-ci.json, base model v2, 2 cores at
        # 0.19-0.26 s per reference step); tests/test_guide.py holds them within a factor of two of the measurement
        expected={"00_tour": "~25 s", "01_full_finetuning": "~35 s", "02_forgetting": "~1.5 min",
                  "03_lora_rank": "~1.5 min", "04_qlora_memory": "~1 min", "05_rag_vs_finetuning": "~2 min",
                  "06_peft_family": "~1 min", "07_instruction_tuning": "~1.5 min", "08_preference_tuning": "~2 min",
                  "09_task_heads": "~1.5 min", "10_domain_adaptation": "~1.5 min",
                  "11_data_quality_and_bias": "~1 min", "12_scaling_out": "~1 min",
                  "13_choosing_a_strategy": "~1.5 min"}),
    "cpu": Profile(
        "cpu", COURSE_MODEL, n_train=1024, n_eval=200, steps=300, batch_size=16, lr=1e-3, eval_every=25,
        overfit_examples=16, overfit_epochs=40, n_probe=150,
        forgetting=Forgetting(steps=150, lr_factors=(0.1, 1.0), lora_ranks=(4, 16), lora_lr_factor=1.0, top_layers=1,
                              replay_fraction=0.25, probe_points=4, n_probe_people=20, n_task_probe=16),
        lora=LoraSweep(ranks=(1, 2, 4, 8, 16, 32, 64),
                       grid=(("all linear", _SCALINGS, Budget(5e-3, 60, 8)), ("q,v", _SCALINGS, Budget(1e-2, 120, 4))),
                       full=Budget(1e-3, 60, 8), alpha0=2.0, n_train=512, n_task=48, n_people=40, energy=0.9),
        memory=MemoryLab(ladder=(("SmolLM2-135M", {}), ("SmolLM2-360M", {"num_hidden_layers": 8})),
                         # 4 blocks, an 8k vocabulary (19M parameters): with 6 blocks and 16k the peak was
                         # 1.87 GiB, over Binder's 2 GB (1.86 GiB)
                         train=("SmolLM2-135M", {"num_hidden_layers": 4, "vocab_size": 8192}),
                         batch=4, seq_len=256, steps=3, lora_steps=150, lora_lr=3e-3, lora_rank=16, workers=1,
                         project_seq_len=512, project_card="A6000 48 GB"),
        rag=Rag(n_people=100, paraphrases=5, ft_steps=300, ft_batch=16, ft_lr=3e-4, lora_rank=16, lora_lr=3e-3,
                curve_every=50, ks=(1, 2, 3, 5), n_known=50, n_changed=20, fresh_steps=100, n_probe=60, n_latency=30,
                dense=True, two_hop_steps=300),
        peft=PeftFamily(rates=_PEFT_RATES_CPU, steps=200, batch_size=8, n_train=160, n_val=20, n_test=40,
                        n_probe=20, rank=8, virtual_tokens=10, adapter_size=16, n_latency=16),
        instruct=InstructionTuning(n_train=1536, n_test=24, steps=200, batch_size=16, lr=1e-3, shots=3,
                                   curve=(24, 96, 384, 1536), n_clean=384, sloppy_share=0.5, max_new_tokens=48),
        prefer=PreferenceTuning(n_prompts=1600, n_test=96, n_pairs=800, batch_size=8, max_new_tokens=40,
                                sft_steps=200, sft_lr=1e-3, strength=0.9, rm_steps=100, rm_lr=1e-4, rl_steps=120,
                                rl_lr=1e-4, rl_beta=0.1, generations=4, dpo_steps=60, dpo_lr=1e-4,
                                betas=(0.03, 0.1, 0.3, 1.0), kl_samples=4),
        heads=TaskHeads(steps=120, qa_steps=80, batch_size=16, lr=1e-3, probe_lr=1e-2, top_blocks=1,
                        curve=(8, 32, 96), poolings=("last", "first", "mean"),
                        # MiniLM on QA (passages of several people, batch 16) alone peaks at 2.36 GiB: over Binder's
                        # 2 GB, so in cpu the encoder runs sector and entities only (gpu: all three)
                        encoder_tasks=("sector", "entities"), encoder_steps=60, encoder_lr=3e-4,
                        per_person=2, n_test=60),
        domain=DomainAdaptation(dapt_steps=600, task_steps=80, batch_size=8, lr=3e-3, task_lr=3e-3, general_share=0.5,
                                sizes=(8, 16, 32, 48), inits=("mean", "random")),
        quality=DataQuality(steps=120, batch_size=16, lr=1e-3, lora_rank=8, lora_lr=3e-3,
                            noise=(0.0, 0.1, 0.25, 0.5), eval_every=20, per_person=2, n_test=60,
                            ratios=(1 / 3, 0.5, 0.7, 0.9), mitigate_ratio=0.9, n_bias=1200),
        strategy=Strategy(n_people=60, n_changed=20, n_train=512, n_test=60, shots=3, steps=150, sft_steps=150,
                          batch_size=16, lr_full=1e-3, lr_lora=3e-3, lora_rank=16, dpo_steps=60, dpo_lr=1e-4,
                          dpo_beta=0.1,
                          n_pairs=400, n_probe=40, n_latency=12, max_new_tokens=40,
                          qlora_tasks=("new facts", "output format", "classification", "domain style")),
        scaling=Scaling(processes=2, steps=40, batch_size=8, n_train=320, lr=1e-3, gpus=8),
        expected={"00_tour": "~1 min", "01_full_finetuning": "~5.5 min", "02_forgetting": "~8 min",
                  "03_lora_rank": "~12 min", "04_qlora_memory": "~5 min", "05_rag_vs_finetuning": "~9.5 min",
                  "06_peft_family": "~10.5 min", "07_instruction_tuning": "~13 min", "08_preference_tuning": "~7.5 min",
                  "09_task_heads": "~5.5 min", "10_domain_adaptation": "~5 min",
                  "11_data_quality_and_bias": "~3.5 min", "12_scaling_out": "~2 min",
                  "13_choosing_a_strategy": "~10.5 min"}),
    "gpu": Profile(
        "gpu", "HuggingFaceTB/SmolLM2-135M", n_train=2048, n_eval=300, steps=400, batch_size=16, lr=5e-5,
        eval_every=25, overfit_examples=16, overfit_epochs=40, n_probe=150,
        forgetting=Forgetting(steps=400, lr_factors=(0.1, 1.0), lora_ranks=(4, 16), lora_lr_factor=1.0, top_layers=1,
                              replay_fraction=0.25, probe_points=4, n_probe_people=20, n_task_probe=16),
        lora=LoraSweep(ranks=(1, 2, 4, 8, 16, 32, 64),
                       grid=(("all linear", _SCALINGS, Budget(5e-4, 200, 16)),
                             ("q,v", _SCALINGS, Budget(1e-3, 400, 8))),
                       full=Budget(5e-5, 200, 16), alpha0=2.0, n_train=2048, n_task=100, n_people=100, energy=0.9),
        memory=MemoryLab(ladder=(("SmolLM2-135M", {}), ("SmolLM2-360M", {}), ("SmolLM2-1.7B", {})),
                         train=("SmolLM2-360M", {}), batch=8, seq_len=512, steps=3, lora_steps=300, lora_lr=5e-4,
                         lora_rank=16, workers=1, project_seq_len=512, project_card="A6000 48 GB"),
        rag=Rag(n_people=100, paraphrases=5, ft_steps=400, ft_batch=16, ft_lr=2e-5, lora_rank=16, lora_lr=2e-4,
                curve_every=50, ks=(1, 2, 3, 5), n_known=50, n_changed=20, fresh_steps=150, n_probe=60, n_latency=30,
                dense=True, two_hop_steps=300, model_id="HuggingFaceTB/SmolLM2-360M-Instruct"),
        peft=PeftFamily(rates=_PEFT_RATES_CPU, steps=400, batch_size=16, n_train=160, n_val=20, n_test=40,
                        n_probe=20, rank=8, virtual_tokens=10, adapter_size=16, n_latency=16),
        # the course model: the instructions are about its world, and a hub model's chat template has no
        # {% generation %} markers for assistant-only loss
        instruct=InstructionTuning(n_train=1536, n_test=24, steps=400, batch_size=16, lr=1e-3, shots=3,
                                   curve=(24, 96, 384, 1536), n_clean=384, sloppy_share=0.5, max_new_tokens=48,
                                   model_id=COURSE_MODEL),
        # the course model, as for notebook 07: the prompts are about its world's people, and SFT needs the
        # chat template's {% generation %} markers
        prefer=PreferenceTuning(n_prompts=3200, n_test=96, n_pairs=1600, batch_size=16, max_new_tokens=40,
                                sft_steps=200, sft_lr=1e-3, strength=0.9, rm_steps=100, rm_lr=1e-4, rl_steps=200,
                                rl_lr=1e-4, rl_beta=0.1, generations=8, dpo_steps=100, dpo_lr=1e-4,
                                betas=(0.03, 0.1, 0.3, 1.0), kl_samples=4, model_id=COURSE_MODEL),
        # the course model, as for notebooks 07-08: the tasks are about its world; MiniLM is the real encoder
        heads=TaskHeads(steps=300, qa_steps=200, batch_size=16, lr=1e-3, probe_lr=1e-2, top_blocks=1,
                        curve=(8, 32, 96, 288), poolings=("last", "first", "mean"),
                        encoder_tasks=("sector", "entities", "extractive_qa"), encoder_steps=200, encoder_lr=3e-4,
                        per_person=3, n_test=60, model_id=COURSE_MODEL),
        # the course model: continued pretraining's cost is measured with notebook 02's probe of its world
        domain=DomainAdaptation(dapt_steps=1000, task_steps=120, batch_size=8, lr=3e-3, task_lr=3e-3,
                                general_share=0.5, sizes=(8, 16, 32, 48), inits=("mean", "random"),
                                model_id=COURSE_MODEL),
        # the course model, as for notebooks 07-09: the people, their jobs and the pronoun tokens are its world's
        quality=DataQuality(steps=300, batch_size=16, lr=1e-3, lora_rank=8, lora_lr=3e-3,
                            noise=(0.0, 0.1, 0.25, 0.5), eval_every=25, per_person=3, n_test=60,
                            ratios=(1 / 3, 0.5, 0.7, 0.9), mitigate_ratio=0.9, n_bias=2400, model_id=COURSE_MODEL),
        strategy=Strategy(n_people=100, n_changed=20, n_train=1024, n_test=100, shots=3, steps=300, sft_steps=300,
                          batch_size=16, lr_full=1e-3, lr_lora=3e-3, lora_rank=16, dpo_steps=100, dpo_lr=1e-4,
                          dpo_beta=0.1,
                          n_pairs=800, n_probe=60, n_latency=20, max_new_tokens=40,
                          qlora_tasks=("new facts", "output format", "classification", "domain style"),
                          # the course model, as for notebooks 07-11: every job is about its world (the
                          # forgetting probe asks its pretraining facts) and SFT needs its chat template's
                          # {% generation %} markers
                          model_id=COURSE_MODEL),
        scaling=Scaling(processes=2, steps=40, batch_size=8, n_train=320, lr=1e-3, gpus=8),
        expected={"00_tour": "~2 min on a T4", "01_full_finetuning": "~10 min on a T4",
                  "02_forgetting": "~30 min on a T4", "03_lora_rank": "~30 min on a T4",
                  "04_qlora_memory": "~5 min on a T4", "05_rag_vs_finetuning": "~20 min on a T4",
                  "06_peft_family": "~6 min on a T4", "07_instruction_tuning": "~5 min on a T4",
                  "08_preference_tuning": "~6 min on a T4", "09_task_heads": "~6 min on a T4",
                  "11_data_quality_and_bias": "~5 min on a T4",
                  "10_domain_adaptation": "~5 min on a T4",
                  "12_scaling_out": "~3 min (its processes use the CPU unless there are 2+ GPUs)",
                  "13_choosing_a_strategy": "~15 min on a T4 (estimated; not yet measured)"}),
}


def check_sizes(sizes, available: int, what: str = "training examples") -> None:
    """Refuse, in one sentence, training-set sizes the data cannot give (a notebook's learning curve): each of
    ``sizes`` must be from 1 to ``available`` (``what`` names what is counted)."""
    bad = [n for n in sizes if not 0 < n <= available]
    if bad:
        raise ValueError(f"Training-set sizes {', '.join(map(str, bad))} are not possible: there are {available} "
                         f"{what}; choose sizes from 1 to {available}.")


def detect() -> str:
    """'gpu' where CUDA is available, else 'cpu'."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile called ``name`` (None: detect from the machine) with ``overrides`` applied and
    validated (None values keep the profile's; a dict changes a group such as ``lora``)."""
    if name is None:
        name = detect()
    if not isinstance(name, str) or name not in PROFILES:
        raise SettingsError(f"Unknown profile {name!r}: use one of {', '.join(PROFILES)} "
                            "(or None to pick from the machine).")
    return PROFILES[name].override(**overrides)

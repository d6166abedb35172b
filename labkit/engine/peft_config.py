"""PEFT configurations, built in one place: every adapter the course trains comes from here.

``lora_config`` gives LoRA (and its variants rsLoRA and DoRA) on a choice of target modules;
``add_lora`` wraps a model with it through PEFT. Introduced in notebook 02_forgetting.
"""

from __future__ import annotations

# Module names of a Llama block, by target choice (the LoRA paper adapted q and v only).
TARGETS = {"q,v": ("q_proj", "v_proj"),
           "all linear": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")}


def lora_config(rank: int, alpha: float | None = None, targets: str = "all linear", rslora: bool = False,
                dora: bool = False, dropout: float = 0.0):
    """A PEFT ``LoraConfig`` for causal LMs: rank ``rank``, ``alpha`` (default 2 * rank), on the
    modules of ``targets`` (a key of TARGETS), rank-stabilised scaling with ``rslora``."""
    from peft import LoraConfig

    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"LoRA rank must be a whole number >= 1, got {rank!r}.")
    if targets not in TARGETS:
        raise ValueError(f"Unknown target choice {targets!r}: use one of {', '.join(TARGETS)}.")
    return LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else 2 * rank,
                      target_modules=list(TARGETS[targets]), lora_dropout=dropout, use_rslora=rslora,
                      use_dora=dora, task_type="CAUSAL_LM")


def add_lora(model, rank: int, **options):
    """``model`` wrapped with PEFT LoRA adapters (options as for ``lora_config``)."""
    import warnings

    from peft import get_peft_model

    with warnings.catch_warnings():
        # peft 0.21 reads transformers' deprecated `is_gradient_checkpointing` while wrapping: a
        # FutureWarning about the two libraries, not about the learner's code.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, lora_config(rank, **options))

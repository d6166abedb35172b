"""PEFT configurations, built in one place: every adapter the course trains comes from here.

``lora_config`` gives LoRA (and its variants rsLoRA and DoRA) on a choice of target modules;
``add_lora`` wraps a model with it through PEFT. ``family_config``/``add_method`` do the same for the
rest of the PEFT family (IA3, prefix, prompt and P-tuning, LN tuning). Introduced in notebook
02_forgetting (LoRA) and 06_peft_family (the family).
"""

from __future__ import annotations

# Module names of a Llama block, by target choice (the LoRA paper adapted q and v only).
TARGETS = {"q,v": ("q_proj", "v_proj"),
           "all linear": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")}


def lora_config(rank: int, alpha: float | None = None, targets: str = "all linear", rslora: bool = False,
                dora: bool = False, dropout: float = 0.0, task_type: str = "CAUSAL_LM"):
    """A PEFT ``LoraConfig`` for causal LMs: rank ``rank``, ``alpha`` (default 2 * rank), on the
    modules of ``targets`` (a key of TARGETS), rank-stabilised scaling with ``rslora``. ``task_type``
    "SEQ_CLS" or "TOKEN_CLS" is for a model with a task head, which PEFT then trains in full (notebook 11)."""
    from peft import LoraConfig

    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"LoRA rank must be a whole number >= 1, got {rank!r}.")
    if targets not in TARGETS:
        raise ValueError(f"Unknown target choice {targets!r}: use one of {', '.join(TARGETS)}.")
    return LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else 2 * rank,
                      target_modules=list(TARGETS[targets]), lora_dropout=dropout, use_rslora=rslora,
                      use_dora=dora, task_type=task_type)


def add_lora(model, rank: int, **options):
    """``model`` wrapped with PEFT LoRA adapters (options as for ``lora_config``)."""
    return _wrap(model, lora_config(rank, **options))


def _wrap(model, config):
    import warnings

    from peft import get_peft_model

    with warnings.catch_warnings():
        # peft 0.21 reads transformers' deprecated `is_gradient_checkpointing` while wrapping: a
        # FutureWarning about the two libraries, not about the learner's code.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        # LN tuning wraps Llama's RMSNorm, which PEFT does not list among its known norms (it trains)
        warnings.filterwarnings("ignore", message=".*Unsupported layer type.*RMSNorm.*")
        return get_peft_model(model, config)

# The rest of the family (notebook 06). Prompt-learning methods add ``virtual_tokens`` learned
# vectors: prompt tuning and P-tuning to the input, prefix tuning to every layer's keys and values.
MERGEABLE = ("LoRA", "DoRA", "IA3", "LN tuning")  # their change folds into the weights


def family_config(method: str, tokenizer=None, *, rank: int = 8, virtual_tokens: int = 10,
                  init_text: str = "", encoder_hidden: int = 128):
    """The PEFT config of ``method`` (one of ``PEFT_METHODS`` that PEFT provides): LoRA and DoRA of
    rank ``rank`` on all linear layers, IA3 on its paper's modules (keys, values, MLP down), LN
    tuning, prefix tuning with or without its reparameterising MLP (``encoder_hidden`` wide), prompt
    tuning initialised from ``init_text``'s token embeddings (read with ``tokenizer``) or at random,
    and P-tuning's prompt encoder."""
    import peft

    from labkit.core.settings import PEFT_METHODS

    kind = "CAUSAL_LM"
    if method in ("LoRA", "DoRA"):
        return lora_config(rank, dora=method == "DoRA")
    if method == "IA3":
        return peft.IA3Config(task_type=kind)
    if method == "LN tuning":
        return peft.LNTuningConfig(task_type=kind)
    if method in ("prefix + projection", "prefix"):
        return peft.PrefixTuningConfig(task_type=kind, num_virtual_tokens=virtual_tokens,
                                       prefix_projection=method == "prefix + projection",
                                       encoder_hidden_size=encoder_hidden)
    if method == "prompt, vocabulary init":
        if tokenizer is None or not init_text:
            raise ValueError("Prompt tuning from vocabulary needs the tokenizer and an init_text to copy.")
        return peft.PromptTuningConfig(task_type=kind, num_virtual_tokens=virtual_tokens,
                                       prompt_tuning_init="TEXT", prompt_tuning_init_text=init_text,
                                       tokenizer_name_or_path=tokenizer.name_or_path)
    if method == "prompt, random init":
        return peft.PromptTuningConfig(task_type=kind, num_virtual_tokens=virtual_tokens)
    if method == "P-tuning":
        return peft.PromptEncoderConfig(task_type=kind, num_virtual_tokens=virtual_tokens,
                                        encoder_hidden_size=encoder_hidden)
    others = [m for m in PEFT_METHODS if m not in ("full", "bottleneck adapter")]
    raise ValueError(f"Unknown PEFT method {method!r}: use one of {', '.join(others)} "
                     "(full fine-tuning and the bottleneck adapter need no PEFT config).")


def add_method(model, method: str, tokenizer=None, **options):
    """``model`` wrapped by PEFT with ``family_config(method, tokenizer, **options)``."""
    return _wrap(model, family_config(method, tokenizer, **options))

"""labkit: the machinery behind the LLM Fine-Tuning Lab's notebooks.

``import labkit as lk`` is the one import a notebook needs; every module is reachable by its short
name (``lk.world``, ``lk.train``, ``lk.lora``, ``lk.plots.lora``, ...), loaded on first use.
The tree shows the layers, bottom to top (a layer imports only from layers below it):

- ``core``: settings (the validated profiles), the fictional world and its v2 generators
  (instructions, preferences, labelled tasks, the second domain, skew), scoring, architectures,
  units (pure Python: no torch);
- ``model``: loading and saving models (safetensors), the tokenizer, pretraining;
- ``engine``: one training entry point (train), callbacks (probes, live loss, peak memory),
  evaluation, capabilities and the model card, records (results and run rows), PEFT
  configs, memory;
- ``topics``: one place per notebook topic (tour 00, finetuning 01, forgetting 02, lora 03, qlora/ 04,
  rag/ 05, peft_family 06, instruction_tuning 07, preference_tuning 08, task_heads 09, domain_adaptation 10,
  data_quality 11, scaling 12, strategy 13), each holding its experiment and its findings as functions;
- ``views``: plots (``views/plots/<topic>.py``, every figure is drawn there and returned, never
  saved), widgets (thin shells over tested functions), live views during training, and the
  exercises with their checks (``lk.exercises.check``).
"""

import importlib
import logging
import warnings

# bitsandbytes announces optional CPU kernels it cannot fetch offline: noise for learners.
warnings.filterwarnings("ignore", message=".*MatMul8bitLt.*")
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
# PEFT's prompt learning ignores position ids (virtual tokens come first) and says so on every forward.
warnings.filterwarnings("ignore", message="Position ids are not supported for parameter efficient tuning")
# PEFT (0.21) reads transformers 5's deprecated `is_gradient_checkpointing` when it wraps or loads a model: the
# FutureWarning is addressed to PEFT, not to a learner.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

# Short name -> module. A notebook writes lk.<short name>; the tree stays free to say where it lives.
MODULES = {
    "settings": "core.settings", "world": "core.world", "architectures": "core.architectures",
    "units": "core.units", "scoring": "core.scoring", "instructions": "core.instructions",
    "preferences": "core.preferences", "labelled": "core.labelled", "domain": "core.domain", "skew": "core.skew",
    "prose": "core.prose",
    "models": "model.loading", "tokenizer": "model.tokenizer", "pretrain": "model.pretrain",
    "card": "engine.card", "checkup": "engine.doctor",
    "train": "engine.train", "callbacks": "engine.callbacks", "evaluate": "engine.evaluate",
    "capabilities": "engine.capabilities", "records": "engine.records",
    "peft_config": "engine.peft_config", "memory": "engine.memory",
    "tour": "topics.tour", "finetuning": "topics.finetuning", "forgetting": "topics.forgetting", "lora": "topics.lora",
    "quantize": "topics.qlora.quantize", "estimate": "topics.qlora.estimate",
    "memory_lab": "topics.qlora.memory_lab", "rag": "topics.rag.retrieval", "knowledge": "topics.rag.knowledge",
    "peft_family": "topics.peft_family", "instruction_tuning": "topics.instruction_tuning",
    "preference_tuning": "topics.preference_tuning", "task_heads": "topics.task_heads", "scaling": "topics.scaling",
    "strategy": "topics.strategy",
    "domain_adaptation": "topics.domain_adaptation", "data_quality": "topics.data_quality",
    "plots": "views.plots", "widgets": "views.widgets", "live": "views.live", "exercises": "views.exercises",
}


def quiet() -> None:
    """Hide what is noise in a lesson: transformers' per-file progress bars (loading, writing
    checkpoints) and its info/warning logs (e.g. the tied lm_head it re-ties on loading).
    Training progress bars (labkit.train keeps them) and errors still show."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def doctor(notebook=None, profile=None) -> dict:
    """What this machine has for the course: versions, device, profile, what is missing (see
    labkit.engine.doctor)."""
    from .engine.doctor import doctor as _doctor

    return _doctor(notebook, profile)


def get_profile(name=None, **overrides):
    """The validated settings of profile ``name`` (see labkit.core.settings.get_profile)."""
    from .core.settings import get_profile as _get

    return _get(name, **overrides)


def load_model(*args, **kwargs):
    """A model and its tokenizer (see labkit.model.loading.load_model)."""
    from .model.loading import load_model as _load

    return _load(*args, **kwargs)


def __getattr__(name):
    if name in MODULES:
        return importlib.import_module(f".{MODULES[name]}", __name__)
    if name == "ModelError":
        from .model.loading import ModelError

        return ModelError
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


__all__ = sorted(MODULES) + ["ModelError", "load_model", "get_profile", "quiet"]

"""labkit: the machinery behind the LLM Fine-Tuning Lab's notebooks.

``import labkit as lk`` gives every notebook its profile, world, model, training and evaluation;
submodules load on first use (``lk.world``, ``lk.train``, ...).
Layers, bottom to top: world, profiles, architectures -> tokenizer, models -> train, evaluate, capabilities ->
tasks, card, memory, pretrain -> callbacks, records, plots, widgets.
"""

import importlib
import logging
import warnings
from pathlib import Path

from .models import ModelError, load_model
from .profiles import get_profile

# bitsandbytes announces optional CPU kernels it cannot fetch offline: noise for learners.
warnings.filterwarnings("ignore", message=".*MatMul8bitLt.*")
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

# Every module in this package is a submodule reachable as lk.<name>, loaded on first use.
_SUBMODULES = {p.stem for p in Path(__file__).parent.glob("[a-z]*.py")}


def quiet() -> None:
    """Hide what is noise in a lesson: transformers' per-file progress bars (loading, writing
    checkpoints) and its info/warning logs (e.g. the tied lm_head it re-ties on loading).
    Training progress bars (labkit.train keeps them) and errors still show."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


__all__ = sorted(_SUBMODULES) + ["ModelError", "load_model", "get_profile", "quiet"]

"""labkit: the machinery behind the LLM Fine-Tuning Lab's notebooks.

``import labkit as lk`` gives every notebook its profile, world, model, training and evaluation.
Layers, bottom to top: world, profiles -> models, tokenizer -> train, evaluate, capabilities ->
tasks, card, memory -> callbacks, records, plots, widgets.
"""

import logging
import warnings

from . import capabilities, card, evaluate, memory, models, profiles, records, tasks, train, world
from .models import ModelError, load_model
from .profiles import get_profile

# bitsandbytes announces optional CPU kernels it cannot fetch offline; it is noise for learners.
warnings.filterwarnings("ignore", message=".*MatMul8bitLt.*")
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

__all__ = ["capabilities", "card", "evaluate", "memory", "models", "profiles", "records", "tasks",
           "train", "world", "ModelError", "load_model", "get_profile"]

"""Loading and saving models: the shipped course model or a hub model, one code path.

Weights are always safetensors (nothing is unpickled). Errors a learner can cause (offline with
a hub id, a missing or corrupt model folder) come back as one sentence saying what to do.
Introduced in notebook 00_tour.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from labkit.core.settings import COURSE_MODEL

MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


class ModelError(RuntimeError):
    """A model could not be loaded; the message says what to do."""


def data_dir() -> Path:
    """The course's data/ folder: beside the labkit package, else in the working directory or
    one of its parents (a non-editable install run from a clone), else $LABKIT_DATA."""
    if os.environ.get("LABKIT_DATA"):
        return Path(os.environ["LABKIT_DATA"])
    here = Path(__file__).resolve().parents[2] / "data"  # labkit/model/loading.py -> the repository
    if (here / "base_model").is_dir():
        return here
    for parent in [Path.cwd(), *Path.cwd().parents]:
        if (parent / "data" / "base_model").is_dir():
            return parent / "data"
    raise ModelError("Cannot find the course's data/ folder: run from inside a clone of the "
                     "course repository, or set LABKIT_DATA to its data/ folder.")


def base_model_dir() -> Path:
    return data_dir() / "base_model"


def _repair(path: Path) -> str:
    """What to do about a broken model folder: the course's own can be restored or rebuilt; any other
    folder has to be saved again by whoever made it."""
    if path.resolve() == base_model_dir().resolve() or (path / "card.json").is_file():
        return "restore it with `git checkout -- data/base_model` or rebuild it with `python -m labkit.model.pretrain`"
    return ("save the model into it again with `model.save_pretrained(folder)` and "
            "`tokenizer.save_pretrained(folder)`")


def _check_folder(path: Path) -> None:
    missing = [f for f in MODEL_FILES if not (path / f).is_file()]
    if missing:
        raise ModelError(f"The model folder {path} is incomplete (missing {', '.join(missing)}): {_repair(path)}.")


DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
          "half": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16", "auto": "auto"}


def parse_dtype(dtype):
    """None, "auto", a torch dtype, or one of the names in ``DTYPES`` -> what ``from_pretrained`` takes."""
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower() in DTYPES:
        name = DTYPES[dtype.lower()]
        return name if name == "auto" else getattr(torch, name)
    raise ModelError(f"Unknown dtype {dtype!r}: use None (float32), 'auto' (the checkpoint's), a torch dtype, "
                     f"or one of {', '.join(sorted(DTYPES))}.")


def hub_reachable(timeout: float = 2.0) -> bool:
    """False when the Hugging Face hub cannot be used now: ``HF_HUB_OFFLINE`` is set, or its host does
    not answer within ``timeout`` seconds (checked once per process)."""
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    global _reachable
    if _reachable is None:
        try:
            socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
            _reachable = True
        except OSError:
            _reachable = False
    return _reachable


_reachable: bool | None = None


def half_precision() -> str | None:
    """The 16-bit type this machine trains and computes in: 'bf16' on a CUDA GPU of compute capability
    8.0 or more, 'fp16' (with a loss scaler) on an older one such as a T4, whose bf16 is only emulated
    (``torch.cuda.is_bf16_supported()`` says yes there), None on the CPU (fp32)."""
    import torch

    if not torch.cuda.is_available():
        return None
    return "bf16" if torch.cuda.get_device_capability()[0] >= 8 else "fp16"


# What sits on the body: next-token prediction; one score per sequence (classifiers, reward models);
# one score per token (entity tags); a start and an end score per token (extractive answers).
HEADS = ("causal", "sequence", "token", "qa")


def _auto(head: str):
    import transformers

    return getattr(transformers, {"causal": "AutoModelForCausalLM", "sequence": "AutoModelForSequenceClassification",
                                  "token": "AutoModelForTokenClassification",
                                  "qa": "AutoModelForQuestionAnswering"}[head])


def body_keys(auto, config) -> dict:
    """``from_pretrained``'s ``key_mapping`` that puts a checkpoint's body where the head class keeps it.
    A causal LM stores its body under ``model.``; some head classes (``LlamaForQuestionAnswering``,
    Qwen2's, Qwen3's, ...) keep it under ``transformer.`` for backward compatibility, and without the
    renaming ``from_pretrained`` silently leaves that body randomly initialised."""
    prefix = auto._model_mapping[type(config)].base_model_prefix
    return {} if prefix == "model" else {r"^model\.": f"{prefix}."}


def load_model(model_id: str = COURSE_MODEL, dtype=None, device=None, head: str = "causal", pretrained: bool = True,
               **kwargs):
    """Load (model, tokenizer). ``course-base`` is the shipped model; anything else is a hub id
    or a local folder, loaded with the same ``from_pretrained`` calls. ``head`` (``HEADS``) other than
    "causal" puts a freshly initialised head on the pretrained body: "sequence" scores the last non-pad
    token (``num_labels=1``: a reward model), "token" scores every token, "qa" gives every token a start
    and an end score; pass ``num_labels`` (and ``id2label``) for the classifiers. ``pretrained`` False
    builds the same architecture with a randomly initialised body (torch's global seed decides it), the
    baseline that shows what pretraining is worth. ``dtype`` None loads float32
    weights, what training wants (mixed precision on a GPU is the Trainer's autocast over fp32 master
    weights: transformers 5 would otherwise load a bf16 checkpoint such as SmolLM2 in bf16, where small
    updates vanish); ``"auto"`` keeps the checkpoint's dtype."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoTokenizer

    if head not in HEADS:
        raise ModelError(f"Unknown head {head!r}: use one of {', '.join(HEADS)}.")
    auto = _auto(head)
    dtype = torch.float32 if dtype is None else parse_dtype(dtype)
    source = str(base_model_dir()) if model_id == COURSE_MODEL else model_id
    if model_id == COURSE_MODEL and not Path(source).is_dir():
        raise ModelError(f"The course model folder {source} is missing: run from a clone of the "
                         "course (or set LABKIT_DATA), or rebuild it with `python -m labkit.model.pretrain`.")
    local = Path(source).is_dir()
    if local:
        _check_folder(Path(source))
    elif not hub_reachable():
        kwargs.setdefault("local_files_only", True)  # offline: the cache only, no minute of retries
    try:
        tok = AutoTokenizer.from_pretrained(source, local_files_only=kwargs.get("local_files_only", False))
        if pretrained:
            keys = None if head == "causal" else body_keys(auto, AutoConfig.from_pretrained(
                source, local_files_only=kwargs.get("local_files_only", False)))
            model, info = auto.from_pretrained(source, dtype=dtype, use_safetensors=True, output_loading_info=True,
                                               key_mapping=keys or None, **kwargs)
        else:
            model, info = auto.from_config(AutoConfig.from_pretrained(source, **kwargs), dtype=dtype), {}
    except (OSError, ValueError, SafetensorError) as err:
        if local:
            raise ModelError(f"The model folder {source} is corrupt ({type(err).__name__}): "
                             f"{_repair(Path(source))}.") from None
        why = "the hub cannot be reached and it is not in the local cache" if kwargs.get("local_files_only") \
            else "a wrong id?"
        raise ModelError(f"Could not load model {model_id!r} from the Hugging Face hub ({why}): check the id "
                         "and the network, or use profile='ci' or 'cpu', which run on the course's shipped "
                         "model.") from None
    body = [k for k in info.get("missing_keys", ()) if k.startswith(f"{model.base_model_prefix}.")]
    if body:  # only the new head may start untrained: a body missing from the checkpoint would be random
        raise ModelError(f"The checkpoint of {model_id!r} lacks {len(body)} weights of the body that a {head!r} "
                         f"head sits on (e.g. {sorted(body)[0]}), so that body would be random: load a checkpoint "
                         "of this architecture, or pass pretrained=False to ask for a random body.")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if head == "sequence" and model.config.pad_token_id is None:  # it finds each sequence's last token by it
        model.config.pad_token_id = tok.pad_token_id
    if device is not None:
        model.to(device)
    return model, tok


def save_base_model(model, tokenizer, out: str | Path, config, seconds: float) -> Path:
    """Save a pretrained model atomically: write to a temporary folder, then swap it in, so a
    failure never leaves a half-written model under data/."""
    from dataclasses import asdict

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        stages = []
        if getattr(config, "init", "") and (Path(config.init) / "pretraining.json").is_file():
            stages = json.loads((Path(config.init) / "pretraining.json").read_text())["stages"]
        stages.append({"config": asdict(config), "train_seconds": round(seconds, 1), "threads": _threads()})
        (tmp / "pretraining.json").write_text(json.dumps(
            {"stages": stages, "train_seconds": round(sum(s["train_seconds"] for s in stages), 1),
             "config": stages[0]["config"], "threads": _threads()}, indent=2) + "\n")
        _check_folder(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _threads() -> int:
    import torch

    return torch.get_num_threads()

"""The course's one training entry point, on the Hugging Face Trainer: ``fit`` (train and report) and
``trainer`` (build one, for lessons that need the Trainer itself, e.g. early stopping).

Data can be (prompt, completion) pairs (loss on the completion only: prompt tokens get label
-100), plain documents (continued pretraining: loss on every token) or any torch Dataset of
``input_ids``/``labels``. Full fine-tuning, LoRA, QLoRA and the rest of the PEFT family all go
through here: the model passed in decides what trains. Callbacks add probes, the live loss plot
and early stopping; peak memory and wall time are always measured. Nothing here is a home-made
training loop. Introduced in notebook 01_full_finetuning.
"""

from __future__ import annotations

import gc
import time
import warnings
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from labkit.core.world import END
from labkit.engine.callbacks import BarOnly, NotebookBarOnly, PeakMemory
from labkit.model.loading import half_precision


def completion_example(prompt_ids: list[int], completion_ids: list[int], max_len: int = 512) -> dict:
    """One training row for completion loss: the prompt's tokens then the completion's, with labels
    -100 (ignored by the loss) on the prompt, so only the completion is learned; cut at ``max_len``."""
    ids = (prompt_ids + completion_ids)[:max_len]
    labels = ([-100] * len(prompt_ids) + completion_ids)[:max_len]
    return {"input_ids": ids, "labels": labels}


class RowDataset(Dataset):
    """Rows already tokenized (dicts of ``input_ids`` and what the model's loss takes: ``labels``, or
    ``start_positions``/``end_positions``), as they are."""

    def __init__(self, rows: list[dict]):
        self.rows = list(rows)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


class CompletionDataset(RowDataset):
    """(prompt, completion) pairs tokenized for causal-LM training on the completion only."""

    def __init__(self, tokenizer, pairs, max_len: int = 512):
        rows = []
        for prompt, completion in pairs:
            p = tokenizer(prompt).input_ids
            c = tokenizer(f" {completion}{END}", add_special_tokens=False).input_ids
            rows.append(completion_example(p, c + [tokenizer.eos_token_id], max_len))
        super().__init__(rows)


class DocumentDataset(RowDataset):
    """Documents for continued pretraining: ``<bos> text <eos>``, loss on every token."""

    def __init__(self, tokenizer, texts: list[str], max_len: int = 256):
        rows = []
        for text in texts:
            ids = (tokenizer(text).input_ids + [tokenizer.eos_token_id])[:max_len]
            rows.append({"input_ids": ids, "labels": list(ids)})
        super().__init__(rows)


def dataset(tokenizer, data) -> Dataset | None:
    """A Dataset from pairs (completion loss), strings (document loss), tokenized rows (dicts, as they
    are: task heads) or a Dataset (as it is)."""
    if data is None or isinstance(data, Dataset):
        return data
    data = list(data)
    if not data:
        raise ValueError("No training examples: give at least one (prompt, completion) pair or document.")
    if all(isinstance(d, str) for d in data):
        return DocumentDataset(tokenizer, data)
    if all(isinstance(d, (tuple, list)) and len(d) == 2 for d in data):
        return CompletionDataset(tokenizer, data)
    if all(isinstance(d, dict) and "input_ids" in d for d in data):
        return RowDataset(data)
    raise TypeError("Training data must be (prompt, completion) pairs, document strings or a torch Dataset "
                    "(or tokenized rows: dicts with input_ids).")


def training_args(out_dir: str, *, steps: int | None = None, epochs: float | None = None,
                  batch_size: int = 16, lr: float = 1e-3, eval_every: int | str | None = None,
                  keep_best: bool = False, seed: int = 0, schedule: str = "constant", **extra):
    """TrainingArguments with the course's defaults: no hub, no reporting, CPU or CUDA as found,
    mixed precision on a GPU (bf16 from compute capability 8.0, else fp16 with a loss scaler),
    evaluation every ``eval_every`` steps ('epoch': every epoch; None: none), ``schedule`` 'constant' or 'cosine' (after
    a 5% warm-up, as in pretraining)."""
    from transformers import TrainingArguments

    if schedule not in ("constant", "cosine"):
        raise ValueError(f"Unknown schedule {schedule!r}: use 'constant' or 'cosine'.")
    if (steps is None) == (epochs is None):
        raise ValueError("Give exactly one of steps or epochs.")
    cuda = torch.cuda.is_available()
    bf16 = half_precision() == "bf16"  # a T4 (capability 7.5) trains in fp16 with a loss scaler
    strategy = "epoch" if eval_every == "epoch" else "steps" if eval_every else "no"
    every = eval_every if strategy == "steps" else None
    kwargs = dict(
        output_dir=out_dir, per_device_train_batch_size=batch_size, per_device_eval_batch_size=batch_size * 2,
        learning_rate=lr, weight_decay=0.0, logging_steps=every or 10, logging_strategy=strategy,
        eval_strategy=strategy, eval_steps=every, save_strategy=strategy if keep_best else "no", save_steps=every,
        load_best_model_at_end=keep_best, metric_for_best_model="eval_loss" if keep_best else None,
        greater_is_better=False if keep_best else None, save_total_limit=2 if keep_best else None,
        save_only_model=True, report_to="none", use_cpu=not cuda, bf16=bf16, fp16=cuda and not bf16,
        seed=seed, data_seed=seed, dataloader_num_workers=0, remove_unused_columns=False,
        eval_on_start=bool(eval_every),  # a step-0 point on the curve
        # Keep the training progress bar: transformers hides it whenever its logging is quieter
        # than warnings, which lk.quiet() makes it (and prints a metrics dict instead).
        disable_tqdm=False)
    if schedule == "cosine":
        kwargs.update(lr_scheduler_type="cosine", warmup_steps=max(1, (steps or 20) // 20))
    else:
        kwargs.update(lr_scheduler_type="constant_with_warmup", warmup_steps=0)
    if steps is not None:
        kwargs["max_steps"] = steps
    else:
        kwargs["num_train_epochs"] = epochs
    kwargs.update(extra)
    return TrainingArguments(**kwargs)


def own_forward(model):
    """Remove the ``forward`` a trainer installs on the model object itself (a wrapper that calls this
    very object's weights: a deep copy of the model would still compute with the original's), so the
    model and every copy of it run their own weights again. Returns the model."""
    model.__dict__.pop("forward", None)
    return model


def rows_dataset(rows: list[dict]):
    """A ``datasets.Dataset`` of ``rows`` for a TRL trainer, with the progress bars of the passes TRL
    runs over it on construction (tokenizing, truncating) off: noise in a lesson."""
    import datasets

    datasets.disable_progress_bars()
    return datasets.Dataset.from_list(rows)


def run_trl(trainer) -> dict:
    """Train with a TRL ``trainer``, measured, without the dict it prints at every log; its model is left
    in eval mode, computing with its own weights (``own_forward``). Returns the seconds and peak memory
    (bytes) of training and the loss curve [(step, loss)]."""
    from transformers import PrinterCallback

    peak = PeakMemory()
    trainer.add_callback(peak)
    trainer.pop_callback(PrinterCallback)
    with warnings.catch_warnings():
        # TRL 1.16 reads transformers' deprecated `is_gradient_checkpointing` before each RL generation: a
        # FutureWarning between the two libraries, not about the learner's code
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        trainer.train()
    own_forward(trainer.model).eval()
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    return {"seconds": peak.seconds, "peak_bytes": peak.peak, "losses": losses}


def trl_settings(*, steps: int, batch_size: int, lr: float, seed: int = 0, cuda: bool | None = None,
                 half: str | None = None) -> dict:
    """The course's settings for a TRL trainer config (SFTConfig, RewardConfig, ...): TRL defaults to bf16
    and gradient checkpointing, which make a CPU step 5-6x slower, so both are off there; on a GPU, mixed
    precision as ``training_args`` chooses it (``cuda`` and ``half`` default to what this machine has)."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    half = (half_precision() if cuda else None) if half is None else half
    return dict(max_steps=steps, per_device_train_batch_size=batch_size, learning_rate=lr,
                lr_scheduler_type="constant_with_warmup", warmup_steps=max(1, steps // 10), weight_decay=0.0,
                bf16=half == "bf16", fp16=half == "fp16", activation_checkpointing=False, use_cpu=not cuda,
                report_to="none", logging_steps=max(1, steps // 10), save_strategy="no", disable_tqdm=True,
                seed=seed, dataloader_num_workers=0)


class _Pad:
    """Pads input_ids with the pad token and labels per token with -100 (ignored by the loss); one label
    per example (a class id) or per-example numbers (span positions) are stacked as they are."""

    def __init__(self, tokenizer):
        from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding

        self.per_token = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
        self.per_example = DataCollatorWithPadding(tokenizer, padding=True)

    def __call__(self, features):
        scalar = "labels" in features[0] and not isinstance(features[0]["labels"], (list, tuple))
        return (self.per_example if scalar else self.per_token)(features)


def collator(tokenizer):
    """Pads a batch (see ``_Pad``); without a tokenizer, stacks fixed-length tensors."""
    from transformers import default_data_collator

    if tokenizer is None:  # fixed-length tensors: stack them
        return default_data_collator
    return _Pad(tokenizer)


_frozen = False


def freeze_long_lived() -> None:
    """Take what is alive now out of Python's cycle collection, once per process. The Trainer runs a
    full collection at the start of every training (accelerate's ``free_memory``), which scans every
    tracked object: ~0.5 s once torch, transformers and PEFT are imported (~500k objects), paid by every
    run of a sweep. Frozen, they are skipped (~0.1 s). What is frozen is what was alive before the first
    training: the libraries and the loaded model; a model dropped later is still freed (by its
    reference count; models here form no reference cycles)."""
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True


def trainer(model, tokenizer, data, *, out_dir: str, eval_data=None, callbacks=(), progress: bool = True,
            **args):
    """A Trainer over ``data`` (see ``dataset``) with ``training_args(out_dir, **args)``. With
    ``progress`` the bar is kept without its per-log dictionaries; without it, nothing prints."""
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    if not progress:
        args["disable_tqdm"] = True
    freeze_long_lived()
    t = Trainer(model=model, args=training_args(out_dir, **args), train_dataset=dataset(tokenizer, data),
                eval_dataset=dataset(tokenizer, eval_data), data_collator=collator(tokenizer),
                callbacks=list(callbacks))
    t.pop_callback(PrinterCallback)  # it prints the final metrics dict when the bar is off
    # Jupyter gets the Trainer's HTML bar, a terminal its tqdm bar; neither prints its loss table/dicts.
    for default, quiet in ((ProgressCallback, BarOnly), (NotebookProgressCallback, NotebookBarOnly)):
        if t.pop_callback(default) is not None and progress:
            t.add_callback(quiet)
    return t


@dataclass
class Fit:
    """What ``fit`` returns: the trained model (also changed in place), its Trainer, the training
    wall time, the peak memory while training (bytes) and the optimiser steps taken."""
    model: object
    trainer: object
    seconds: float
    peak_bytes: int
    steps: int


def fit(model, tokenizer, data, *, out_dir: str, **kwargs) -> Fit:
    """Train ``model`` on ``data`` with the Trainer (arguments as for ``trainer``) and measure it."""
    peak = PeakMemory()
    t = trainer(model, tokenizer, data, out_dir=out_dir, callbacks=[*kwargs.pop("callbacks", ()), peak],
                **kwargs)
    start = time.perf_counter()
    t.train()
    seconds = time.perf_counter() - start
    own_forward(model).eval()
    return Fit(model, t, seconds, peak.peak, t.state.global_step)


def count_parameters(model) -> dict:
    """Total and trainable parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}

"""Fine-tuning through the Hugging Face Trainer: prompt/completion data, one call.

The loss is on the completion only (prompt tokens get label -100). Callbacks add the live loss
plot, memory tracking and early stopping; nothing here is a home-made training loop.
Introduced in notebook 01_full_finetuning.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from labkit.core.world import END


class CompletionDataset(Dataset):
    """(prompt, completion) pairs tokenized for causal-LM training on the completion only."""

    def __init__(self, tokenizer, pairs, max_len: int = 512):
        self.rows = []
        for prompt, completion in pairs:
            p = tokenizer(prompt).input_ids
            c = tokenizer(f" {completion}{END}", add_special_tokens=False).input_ids
            c = c + [tokenizer.eos_token_id]
            ids = (p + c)[:max_len]
            labels = ([-100] * len(p) + c)[:max_len]
            self.rows.append({"input_ids": ids, "labels": labels})

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def training_args(out_dir: str, *, steps: int | None = None, epochs: float | None = None,
                  batch_size: int = 16, lr: float = 1e-3, eval_every: int | None = None,
                  keep_best: bool = False, seed: int = 0, **extra):
    """TrainingArguments with the course's defaults: no hub, no reporting, CPU or CUDA as found,
    fp16/bf16 on a GPU, evaluation every ``eval_every`` steps (or every epoch if None)."""
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    strategy = "steps" if eval_every else "epoch"
    kwargs = dict(
        output_dir=out_dir, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size * 2, learning_rate=lr, lr_scheduler_type="constant_with_warmup",
        warmup_steps=0, weight_decay=0.0, logging_steps=eval_every or 1,
        logging_strategy=strategy, eval_strategy=strategy, eval_steps=eval_every,
        save_strategy=strategy if keep_best else "no", save_steps=eval_every,
        load_best_model_at_end=keep_best, metric_for_best_model="eval_loss" if keep_best else None,
        greater_is_better=False if keep_best else None, save_total_limit=2 if keep_best else None,
        save_only_model=True, report_to="none", use_cpu=not cuda, bf16=bf16,
        fp16=cuda and not bf16, seed=seed, data_seed=seed, dataloader_num_workers=0,
        remove_unused_columns=False,
        # Keep the training progress bar: transformers hides it whenever its logging is quieter
        # than warnings, which lk.quiet() makes it (and prints a metrics dict instead).
        disable_tqdm=False)
    if steps is not None:
        kwargs["max_steps"] = steps
    if epochs is not None:
        kwargs["num_train_epochs"] = epochs
    kwargs.update(extra)
    kwargs.setdefault("eval_on_start", kwargs["eval_strategy"] != "no")  # a step-0 point on the curve
    return TrainingArguments(**kwargs)


def collator(tokenizer):
    """Pads input_ids with the pad token and labels with -100 (ignored by the loss)."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)


def make_trainer(model, tokenizer, train_pairs, eval_pairs, args, callbacks=()):
    """A Trainer over prompt/completion pairs (dynamic padding, loss on completions).
    The text progress bar keeps its bar but not its per-log dictionaries (the live plot shows
    the losses); in Jupyter, the Trainer's own notebook table is kept."""
    from transformers import Trainer
    from transformers.trainer_callback import ProgressCallback

    class BarOnly(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass

    trainer = Trainer(
        model=model, args=args, train_dataset=CompletionDataset(tokenizer, train_pairs),
        eval_dataset=CompletionDataset(tokenizer, eval_pairs) if eval_pairs else None,
        data_collator=collator(tokenizer), callbacks=list(callbacks))
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarOnly)
    return trainer


def count_parameters(model) -> dict:
    """Total and trainable parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}

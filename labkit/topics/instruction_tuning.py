"""Instruction tuning: supervised fine-tuning on chat turns with TRL's ``SFTTrainer``.

The data are world v2's instructions (``labkit.core.instructions``): a user turn (a passage and an
instruction) and the assistant's reference, scored exactly. ``tune`` trains a copy of the model with
the loss on the assistant's tokens only (the chat template's ``{% generation %}`` markers) or on the
whole sequence, and refuses the two silent failures that train nothing useful: every label masked,
and an assistant turn whose end-of-text is not trained (the model then never learns to stop).
``respond`` answers zero-shot, few-shot (earlier turns as examples) or tuned, and reports whether
each answer stopped on its own. Introduced in notebook 07_instruction_tuning.
"""

from __future__ import annotations

import copy
import random
import re

from labkit.core import instructions as I
from labkit.core import settings as settings_rules
from labkit.core import world as W
from labkit.engine.evaluate import generate_with_stops

RESULTS = {"profile": str, "seed": int, "sizes": dict, "template": dict, "silent_failures": dict, "zero": dict,
           "few": dict, "tuned": dict, "whole": dict, "curve": list, "quality": dict, "summaries": dict,
           "examples": list}


def check_sizes(settings) -> None:
    """Refuse, in one sentence, training-set sizes the training set cannot give (``settings``: the
    profile's ``instruct``): each curve size and ``n_clean`` at most ``n_train``."""
    n = settings.n_train // len(I.SEEN_KINDS) * len(I.SEEN_KINDS)
    settings_rules.check_sizes((*settings.curve, settings.n_clean), n)


def chat_prompt(tokenizer, example: dict, shots: list[dict] = ()) -> str:
    """The prompt for ``example``'s user turn, after ``shots`` (whole earlier examples) as turns."""
    messages = [m for shot in shots for m in shot["messages"]] + example["messages"][:1]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def pick_shots(train: list[dict], example: dict, n: int, rng: random.Random, tokenizer=None,
               max_tokens: int | None = None) -> list[dict]:
    """Up to ``n`` training examples of the same kind as ``example`` (few-shot in-context examples),
    drawn at random; with ``max_tokens``, only while the whole prompt stays within that many tokens
    (a model cannot use a context longer than it was trained on). None for a kind training never holds
    (the held-out kinds: nothing of theirs may be shown)."""
    def fits(shots):
        return max_tokens is None or len(tokenizer(chat_prompt(tokenizer, example, shots)).input_ids) <= max_tokens

    same = [e for e in train if e["kind"] == example["kind"]]
    picked: list[dict] = []
    for shot in rng.sample(same, len(same)):
        if len(picked) == n:
            break
        if fits([*picked, shot]):
            picked.append(shot)
    return picked


def respond(model, tokenizer, examples: list[dict], shots: list[list[dict]] | None = None,
            max_new_tokens: int = 48) -> list[dict]:
    """Greedy answers to ``examples`` (after the matching ``shots``, if given): kind, response,
    whether it stopped on its own, and its score."""
    shots = shots or [[] for _ in examples]
    prompts = [chat_prompt(tokenizer, e, s) for e, s in zip(examples, shots)]
    answers = generate_with_stops(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
    return [{"kind": e["kind"], "response": text, "reference": e["reference"], "stopped": stopped,
             "score": I.score(e, text)} for e, (text, stopped) in zip(examples, answers)]


def scores(rows: list[dict]) -> dict:
    """Mean score per kind, then over the seen and the held-out kinds (each kind weighs the same)."""
    by_kind: dict[str, list[float]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(r["score"])
    out = {k: sum(v) / len(v) for k, v in by_kind.items()}
    for group, kinds in (("seen", I.SEEN_KINDS), ("heldout", I.HELDOUT_KINDS)):
        present = [out[k] for k in kinds if k in out]
        if present:
            out[group] = sum(present) / len(present)
    return out


def precision_recall(written: set, told: set, wanted: set) -> tuple[float, float]:
    """Precision: the share of ``written`` facts that are ``told`` (true; 1.0 when nothing is written);
    recall: the share of ``wanted`` facts that are written."""
    precision = len(written & told) / len(written) if written else 1.0
    return precision, len(written & wanted) / len(wanted)


def summary_facts(example: dict, response: str) -> dict:
    """A summary checked against the passage it summarises (one person's facts, the world's truth):
    ``precision``, the share of the facts it writes that the passage gives; ``recall``, the share of
    the reference's facts it writes; ``named``, whether it names the person."""
    told = {v for vs in W.find_values(example["messages"][0]["content"]).values() for v in vs}
    written = {v for vs in W.find_values(response).values() for v in vs}
    precision, recall = precision_recall(written, told, set(example["items"]))
    person = example["reference"].split(" is a ")[0]
    return {"precision": precision, "recall": recall, "named": person in W.find_names(response)}


def assistant_labels(tokenizer, messages: list[dict]) -> dict:
    """``messages`` through the chat template: token ids, and labels that train only the assistant's
    tokens (the template's ``{% generation %}`` span; -100 elsewhere), as TRL's assistant-only loss does."""
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids = list(out["input_ids"])
    return {"input_ids": ids, "labels": mask_labels(ids, out["assistant_masks"])}


def mask_labels(input_ids: list[int], keep: list[int]) -> list[int]:
    """Labels for ``input_ids``: the id where ``keep`` is 1 (in the loss), -100 where it is 0 (ignored)."""
    return [i if k else -100 for i, k in zip(input_ids, keep)]


def show_trained(tokenizer, input_ids: list[int], labels: list[int]) -> str:
    """The tokens as text, each one in the loss in [brackets]."""
    pieces = tokenizer.convert_ids_to_tokens(input_ids)
    return " ".join(f"[{p}]" if label != -100 else p for p, label in zip(pieces, labels))


def stopped_share(rows: list[dict]) -> float:
    """The share of answers that ended with end-of-text before the length limit."""
    return sum(r["stopped"] for r in rows) / len(rows)


def sloppy(examples: list[dict], share: float, seed: int = 0) -> list[dict]:
    """``examples`` with a ``share`` of their responses replaced by another example's response of the same
    kind: the right format, the wrong content (careless labelling)."""
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], not {share!r}.")
    rng = random.Random(f"sloppy-{seed}")
    by_kind: dict[str, list[str]] = {}
    for e in examples:
        by_kind.setdefault(e["kind"], []).append(e["reference"])
    out = []
    for e in examples:
        if rng.random() < share:
            wrong = [ref for ref in by_kind[e["kind"]] if ref != e["reference"]]
            if wrong:
                ref = rng.choice(wrong)
                e = {**e, "reference": ref, "messages": [e["messages"][0], {"role": "assistant", "content": ref}]}
        out.append(e)
    return out


def sft_config(out_dir: str, *, steps: int, batch_size: int, lr: float, assistant_only: bool = True,
               max_length: int = 384, seed: int = 0):
    """TRL's SFTConfig with the course's settings (``train.trl_settings``: no bf16 or gradient
    checkpointing on the CPU), the loss on the assistant's turns only or on everything."""
    from trl import SFTConfig

    from labkit.engine.train import trl_settings

    return SFTConfig(output_dir=out_dir, assistant_only_loss=assistant_only, max_length=max_length,
                     **trl_settings(steps=steps, batch_size=batch_size, lr=lr, seed=seed))


def check_trained_tokens(dataset, tokenizer) -> dict:
    """What a tokenized SFT dataset trains: the share of tokens in the loss and of examples whose
    end-of-text is in it. Raises ValueError on the silent failures: nothing in the loss (every label
    masked), or no end-of-text trained (a model tuned so never learns to stop)."""
    total = trained = eos = 0
    for row in dataset:
        labels = row["labels"] if "labels" in row else row["input_ids"]  # no labels: the whole sequence
        total += len(labels)
        trained += sum(label != -100 for label in labels)
        eos += tokenizer.eos_token_id in labels
    if trained == 0:
        raise ValueError("Every label is masked: training would learn nothing (check the chat template's "
                         "{% generation %} markers and that the assistant turns are not empty).")
    if eos == 0:
        raise ValueError("No example has its end-of-text in the loss: the tuned model would never learn to "
                         "stop (is the pad token the end-of-text token, masked as padding?).")
    return {"trained_share": trained / total, "eos_trained": eos / len(dataset)}


def has_generation_markers(tokenizer) -> bool:
    """Whether the tokenizer's chat template marks the assistant's tokens (``{% generation %}``)."""
    return re.search(r"{%-?\s*generation\s*-?%}", tokenizer.chat_template or "") is not None


def tune(model, tokenizer, examples: list[dict], *, out_dir: str, steps: int, batch_size: int, lr: float,
         assistant_only: bool = True, seed: int = 0, callbacks=()) -> dict:
    """Supervised fine-tuning of a copy of ``model`` on ``examples`` (chat messages) with TRL's
    SFTTrainer; the loss on the assistant's turns only, or on everything. Returns the tuned model, the
    seconds and peak memory (bytes) training took, its loss curve and what the data trained
    (``check_trained_tokens``)."""
    from trl import SFTTrainer

    from labkit.engine.train import rows_dataset, run_trl

    if assistant_only and not has_generation_markers(tokenizer):
        raise ValueError("assistant_only_loss needs the chat template's {% generation %} markers; "
                         "this tokenizer's template has none (every label would be masked).")
    tuned = copy.deepcopy(model)
    data = rows_dataset([{"messages": e["messages"]} for e in examples])
    args = sft_config(out_dir, steps=steps, batch_size=batch_size, lr=lr, assistant_only=assistant_only, seed=seed)
    trainer = SFTTrainer(model=tuned, args=args, train_dataset=data, processing_class=tokenizer,
                         callbacks=list(callbacks))
    trained = check_trained_tokens(trainer.train_dataset, tokenizer)
    return {"model": tuned, **run_trl(trainer), **trained}

"""Exact-match evaluation against the world's ground truth.

A closed-form answer is right when greedy decoding reproduces it and then the end marker.
One teacher-forced forward pass checks that exactly (greedy emits the gold sequence iff the
argmax at every answer position is the gold token), so evaluation is one batch of forwards.
Introduced in notebook 00_tour.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from labkit.core import scoring
from labkit.core.world import END


def input_logits(output, input_ids):
    """The logits at the input's positions: prompt tuning and P-tuning prepend virtual tokens, whose
    positions come first in the output (other models return exactly the input's positions)."""
    return output.logits[:, -input_ids.shape[1]:]


def _encode(tokenizer, prompt: str, answer: str):
    p = tokenizer(prompt).input_ids
    full = tokenizer(f"{prompt} {answer}{END}").input_ids
    if full[: len(p)] != p:  # a hub tokenizer merged across the boundary: score the full text
        p = full[: len(tokenizer(prompt, add_special_tokens=False).input_ids)]
    return full, len(p)


@torch.no_grad()
def _teacher_forced(model, tokenizer, pairs, batch_size: int, logits: bool = False):
    """Yield, per (prompt, answer), its ``(ids, prompt_length)`` and the model's greedy prediction at
    every position (with ``logits``: its logits there instead), from one right-padded forward pass per
    batch."""
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for i in range(0, len(pairs), batch_size):
        enc = [_encode(tokenizer, p, a) for p, a in pairs[i : i + batch_size]]
        ids = torch.full((len(enc), max(len(f) for f, _ in enc)), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, (f, _) in enumerate(enc):
            ids[j, : len(f)], mask[j, : len(f)] = torch.tensor(f), 1
        out = input_logits(model(input_ids=ids.to(device), attention_mask=mask.to(device)), ids)
        out = out if logits else out.argmax(-1).cpu()  # exact match needs only the argmax: one per batch
        for j, (f, n) in enumerate(enc):
            yield f, n, out[j]


def answer_checks(model, tokenizer, pairs, batch_size: int = 64) -> list[tuple[bool, bool]]:
    """For each (prompt, answer), from one teacher-forced pass: (does greedy decoding produce
    exactly ``answer`` then ' .'?, is end-of-text then the model's most likely next token?)."""
    return [(bool((pred[n - 1 : len(f) - 1] == torch.tensor(f[n:])).all()),
             int(pred[len(f) - 1]) == tokenizer.eos_token_id)
            for f, n, pred in _teacher_forced(model, tokenizer, pairs, batch_size)]


def _answer_token_logprobs(model, tokenizer, pairs, batch_size: int):
    """Per (prompt, answer): the log-probability of each token of the answer then ' .', teacher-forced."""
    for f, n, logits in _teacher_forced(model, tokenizer, pairs, batch_size, logits=True):
        logp = torch.log_softmax(logits[n - 1 : len(f) - 1].float(), dim=-1).cpu()
        yield logp.gather(1, torch.tensor(f[n:])[:, None])[:, 0]


def answer_logprobs(model, tokenizer, pairs, batch_size: int = 64) -> list[float]:
    """For each (prompt, answer): log p(answer then ' .' | prompt), summed over the answer's tokens, from
    the same teacher-forced pass as ``exact_match``. How likely the model finds an answer it may not
    write greedily: ranking candidate answers by it is a multiple-choice test."""
    return [float(t.sum()) for t in _answer_token_logprobs(model, tokenizer, pairs, batch_size)]


@torch.no_grad()
def candidate_logprobs(model, tokenizer, prompts: list[str], candidates: list[str], batch_size: int = 64):
    """For each prompt, ``answer_logprobs`` of every one of ``candidates`` after it (a list per prompt). The
    prompt is read once and its key/value cache shared by all candidates, so scoring ``len(candidates)``
    answers costs about one pass over the prompt, not one each (multiple choice over many towns or names).
    Where a tokenizer merges a candidate into the prompt, or the model cannot take a cache (prompt tuning),
    that prompt is scored pair by pair as ``answer_logprobs`` does."""
    import copy

    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    shared = not getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False)
    out = []
    for prompt in prompts:
        p = tokenizer(prompt).input_ids
        enc = [_encode(tokenizer, prompt, c) for c in candidates]
        if not shared or any(n != len(p) or full[:n] != p for full, n in enc):
            out.append(answer_logprobs(model, tokenizer, [(prompt, c) for c in candidates], batch_size))
            continue
        first = model(input_ids=torch.tensor([p], device=device), use_cache=True)
        last = torch.log_softmax(first.logits[0, -1].float(), dim=-1).cpu()  # each candidate's first token
        scores = []
        for i in range(0, len(enc), batch_size):
            rest = [full[len(p):] for full, _ in enc[i : i + batch_size]]  # the answer's tokens, then ' .'
            width = max(len(r) for r in rest) - 1  # the last token is predicted, never read
            ids = torch.full((len(rest), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rest), len(p) + width), dtype=torch.long)
            mask[:, : len(p)] = 1
            for j, r in enumerate(rest):
                ids[j, : len(r) - 1], mask[j, len(p) : len(p) + len(r) - 1] = torch.tensor(r[:-1]), 1
            cache = copy.deepcopy(first.past_key_values)  # a forward pass appends to the cache it is given
            cache.batch_repeat_interleave(len(rest))
            positions = torch.arange(len(p), len(p) + width)[None].expand(len(rest), -1)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), past_key_values=cache,
                           position_ids=positions.to(device), use_cache=True).logits
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            for j, r in enumerate(rest):
                scores.append(float(last[r[0]]) + sum(float(logp[j, t - 1, r[t]]) for t in range(1, len(r))))
        out.append(scores)
    return out


def answer_perplexity(model, tokenizer, pairs, batch_size: int = 32) -> float:
    """Perplexity of the answers (each then ' .') given their prompts, over all their tokens: how well a
    model predicts a continuation, with or without context before it."""
    total, count = 0.0, 0
    for t in _answer_token_logprobs(model, tokenizer, pairs, batch_size):
        total, count = total - float(t.sum()), count + len(t)
    return math.exp(total / max(count, 1))


def exact_match(model, tokenizer, pairs, batch_size: int = 64) -> list[bool]:
    """For each (prompt, answer), does greedy decoding produce exactly ``answer`` then ' .'?"""
    return [right for right, _ in answer_checks(model, tokenizer, pairs, batch_size)]


def stops_after(model, tokenizer, pairs, batch_size: int = 64) -> list[bool]:
    """For each (prompt, answer): after the answer and its end marker, is end-of-text the model's
    most likely next token (would greedy generation stop on its own)?"""
    return [stops for _, stops in answer_checks(model, tokenizer, pairs, batch_size)]


def answers_right(model, tokenizer, pairs, strict: bool = True, batch_size: int = 64) -> list[bool]:
    """Per (prompt, answer): ``strict``, greedy decoding writes exactly the answer then the end
    marker (checked in one teacher-forced pass); lenient (hub models, whose punctuation differs), a
    generated answer that starts with the value once case and punctuation are ignored."""
    if strict:
        return exact_match(model, tokenizer, pairs, batch_size)
    outs = generate(model, tokenizer, [p for p, _ in pairs], max_new_tokens=8, batch_size=batch_size)
    return [scoring.exact_match(o, a, strict=False) for o, (_, a) in zip(outs, pairs)]


def accuracy(model, tokenizer, pairs, strict: bool = True, batch_size: int = 64) -> float:
    """Share of (prompt, answer) pairs the model answers right (see ``answers_right``)."""
    return scoring.accuracy(answers_right(model, tokenizer, pairs, strict, batch_size))


@torch.no_grad()
def perplexity(model, tokenizer, texts, batch_size: int = 32) -> float:
    """Token-level perplexity of ``texts`` (each scored on its own, padding ignored)."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i : i + batch_size], return_tensors="pt", padding=True)
        labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
        logits = input_logits(model(**{k: v.to(device) for k, v in enc.items()}), enc.input_ids).float().cpu()
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1),
            ignore_index=-100, reduction="sum")
        total += loss.item()
        count += int((labels[:, 1:] != -100).sum())
    return math.exp(total / max(count, 1))


@torch.no_grad()
def generate(model, tokenizer, prompts, max_new_tokens: int = 40, batch_size: int = 32,
             until: str | None = END) -> list[str]:
    """Greedy continuations of ``prompts`` (left-padded batches), cut at ``until`` (the end marker;
    None: kept whole up to the end-of-text token or the length limit)."""
    return [text for text, _ in generate_with_stops(model, tokenizer, prompts, max_new_tokens, batch_size, until)]


@contextmanager
def padded_on(tokenizer, side: str):
    """Within the block, ``tokenizer`` pads on ``side`` ("left" to generate, "right" to score a
    sequence at its last token); its own side is restored after, whatever happens."""
    before, tokenizer.padding_side = tokenizer.padding_side, side
    try:
        yield tokenizer
    finally:
        tokenizer.padding_side = before


def generate_with_stops(model, tokenizer, prompts, max_new_tokens: int = 40, batch_size: int = 32,
                        until: str | None = None) -> list[tuple[str, bool]]:
    """Like ``generate``, with whether each continuation ended on its own (emitted end-of-text
    before ``max_new_tokens``)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    with padded_on(tokenizer, "left"):
        for i in range(0, len(prompts), batch_size):
            enc = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True).to(device)
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
            for row in ids[:, enc.input_ids.shape[1]:]:
                stopped = bool((row == tokenizer.eos_token_id).any())
                text = tokenizer.decode(row, skip_special_tokens=True)
                out.append((text.split(until)[0].strip() if until and until in text else text.strip(), stopped))
    return out

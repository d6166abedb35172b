"""Choosing a strategy: five kinds of task against the ways to adapt a model (prompting, RAG, LoRA,
QLoRA, full fine-tuning, SFT + DPO), each measured on one budget for quality, training cost,
inference cost, the cost of a change and forgetting; and an advisor that ranks the strategies for a
learner's constraints from those measurements. Introduced in notebook 13_choosing_a_strategy.

Every cell is one run, kept as a row of the notebook's run records (``labkit.records.record_run``),
so a re-run measures only the cells it lacks.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from dataclasses import asdict

from labkit.core import world as W

TASKS = ("new facts", "output format", "classification", "domain style", "preferences")
STRATEGIES = ("zero-shot prompting", "few-shot prompting", "RAG", "LoRA", "QLoRA", "full fine-tuning", "SFT + DPO")
TRAINED = ("LoRA", "QLoRA", "full fine-tuning", "SFT + DPO")  # the strategies that change weights
# Which strategies answer which task (RAG only where there is something to look up; DPO only where there
# are preference pairs; few-shot where examples fit in a prompt: not for new facts, which no example holds).
APPLIES = {
    "new facts": ("zero-shot prompting", "RAG", "LoRA", "QLoRA", "full fine-tuning"),
    "output format": ("zero-shot prompting", "few-shot prompting", "LoRA", "QLoRA", "full fine-tuning"),
    "classification": ("zero-shot prompting", "few-shot prompting", "LoRA", "QLoRA", "full fine-tuning"),
    "domain style": ("zero-shot prompting", "few-shot prompting", "LoRA", "QLoRA", "full fine-tuning"),
    "preferences": ("zero-shot prompting", "full fine-tuning", "SFT + DPO"),
}
# Each task's quality metric, and whether higher is better.
METRICS = {"new facts": ("exact match", True), "output format": ("field accuracy", True),
           "classification": ("accuracy", True), "domain style": ("perplexity", False),
           "preferences": ("gold reward", True)}
LATENCY_TOKENS = 8  # tokens generated per timed answer (prompting pays for its longer prompt here)
# Inference memory of a strategy on the advisor's target model: its weights in bf16 (2 bytes a parameter)
# for prompting and RAG, which never train.
INFERENCE_BYTES_PER_PARAM = 2

# One cell of the table, as kept in the run records (checked by ``check_cell``).
CELL = {"task": str, "strategy": str, "metric": str, "quality": float, "train_seconds": float,
        "peak_mib": float, "trainable": int, "context_tokens": float, "latency_ms": float,
        "update_seconds": (float, type(None)), "fresh_quality": (float, type(None)), "recall_lost": float,
        "examples": int}

# What notebook 13 writes to results.json (checked by records.save_results).
RESULTS = {"profile": str, "seed": int, "settings": dict, "cells": list, "measured_now": list, "reused": list,
           "base_recall": float, "best": dict, "findings": dict, "advice": dict}


def settings_digest(settings) -> str:
    """A short fingerprint of the settings a cell was measured with: a record is reused only when equal."""
    data = asdict(settings) if hasattr(settings, "__dataclass_fields__") else settings
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cell_name(task: str, strategy: str) -> str:
    return f"{task}: {strategy}"


def check_cell(task: str, strategy: str) -> None:
    """Refuse, in one sentence, a task or strategy the table does not have or a pair that does not apply."""
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}: use one of {', '.join(TASKS)}.")
    if strategy not in APPLIES[task]:
        raise ValueError(f"{strategy!r} does not apply to {task!r}: use one of {', '.join(APPLIES[task])}.")


def check_tasks(tasks) -> list[str]:
    """The jobs to measure: None gives all of ``TASKS``, one name gives that one; an unknown name is refused
    in one sentence."""
    tasks = list(TASKS) if tasks is None else [tasks] if isinstance(tasks, str) else list(tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ValueError(f"Unknown task(s) {', '.join(map(repr, unknown)) or '(none given)'}: use any of "
                         f"{', '.join(TASKS)}.")
    return tasks


def cells(tasks=TASKS, qlora=TASKS) -> list[tuple[str, str]]:
    """Every (task, strategy) pair of ``tasks`` that applies, in table order (QLoRA only on ``qlora``'s)."""
    return [(t, s) for t in tasks for s in APPLIES[t] if s != "QLoRA" or t in qlora]


def missing(wanted: list[tuple[str, str]], rows: list[dict], profile: str, seed: int, digest: str) -> list:
    """The cells of ``wanted`` no record in ``rows`` holds for this profile, seed and settings."""
    have = {(r["config"].get("task"), r["config"].get("strategy")) for r in rows
            if r["config"].get("profile") == profile and r["config"].get("seed") == seed
            and r["config"].get("settings") == digest}
    return [c for c in wanted if c not in have]


def cells_from_records(rows: list[dict], profile: str, seed: int, digest: str) -> list[dict]:
    """The table's cells held in run records (the latest record of each cell wins)."""
    out = {}
    for r in rows:
        c = r["config"]
        if c.get("profile") == profile and c.get("seed") == seed and c.get("settings") == digest and "task" in c:
            out[(c["task"], c["strategy"])] = r["metrics"]
    return [out[k] for k in cells() if k in out]


# --- the measurements -------------------------------------------------------------------------

def better(task: str, a: float, b: float) -> bool:
    """Is quality ``a`` better than ``b`` on ``task`` (perplexity: lower)?"""
    return a > b if METRICS[task][1] else a < b


def score(task: str, quality: float) -> float:
    """Quality as "higher is better" (perplexity negated), for ranking."""
    return quality if METRICS[task][1] else -quality


def latency_ms(model, tokenizer, prompts: list[str], retrieve=None, max_new_tokens: int = LATENCY_TOKENS) -> float:
    """Median milliseconds to answer one prompt at a time (``retrieve``: prompt -> the prompt with its
    passages, timed with it), greedy, ``max_new_tokens`` tokens."""
    from labkit.engine.evaluate import generate

    times = []
    for p in prompts:
        start = time.perf_counter()
        generate(model, tokenizer, [retrieve(p) if retrieve else p], max_new_tokens=max_new_tokens, batch_size=1,
                 until=None)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def mean_tokens(tokenizer, prompts: list[str]) -> float:
    """Mean prompt length in tokens: the context every answer pays for."""
    return sum(len(tokenizer(p).input_ids) for p in prompts) / max(len(prompts), 1)


def few_shot_prefix(pairs: list[tuple[str, str]]) -> str:
    """Worked examples to put before a prompt: each prompt followed by its answer."""
    return "".join(f"{p} {a}{W.END} " for p, a in pairs)


def advise_inputs_check(task, examples, budget_s, memory_gib, latency_ms_limit):
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}: use one of {', '.join(TASKS)}.")
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 0:
        raise ValueError(f"examples is a count of labelled examples (a whole number >= 0), got {examples!r}.")
    for name, v in (("budget_s", budget_s), ("memory_gib", memory_gib), ("latency_ms", latency_ms_limit)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
            raise ValueError(f"{name} is a number > 0 (or None: no limit), got {v!r}.")


def memory_needed(strategy: str, model: str) -> float:
    """GiB ``strategy`` needs on ``model`` (a named architecture or a size in billions): notebook 04's
    estimator (bf16, batch 1, 512 tokens, checkpointing) for training; DPO adds a frozen reference copy;
    prompting and RAG hold the bf16 weights only."""
    from labkit.core.units import gib
    from labkit.topics.qlora.estimate import Setup, architecture_for, estimate

    arch = architecture_for(model)
    if strategy not in TRAINED:
        return gib(arch.parameter_count() * INFERENCE_BYTES_PER_PARAM)
    method = {"LoRA": "lora", "QLoRA": "qlora"}.get(strategy, "full")
    est = estimate(arch, Setup(method=method, batch=1, seq_len=512, checkpointing=True, dtype="bf16",
                               mixed_precision=method == "full"))
    extra = arch.parameter_count() * INFERENCE_BYTES_PER_PARAM if strategy == "SFT + DPO" else 0
    return gib(est["total"] + extra)


def four_bit_weights(model: str) -> float:
    """GiB of ``model``'s weights in NF4 with double quantization (what a 4-bit copy serves from)."""
    from labkit.core.units import gib
    from labkit.topics.qlora.estimate import architecture_for, quant_bits

    return gib(architecture_for(model).parameter_count() * quant_bits(True) / 8)


def advise(table: list[dict], task: str, *, examples: int, budget_s: float | None = None,
           memory_gib: float | None = None, model: str = "Llama-2-7B", fresh: bool = False,
           latency_ms_limit: float | None = None) -> list[dict]:
    """Rank the measured strategies for ``task`` under a learner's constraints. Each row: strategy,
    quality, ``fits`` and, in ``reasons``, the measured numbers behind the place it got.

    A strategy is ruled out when the learner has fewer labelled ``examples`` than it was measured
    with, when its training took longer than ``budget_s`` (seconds as measured here), when it needs
    more than ``memory_gib`` on ``model`` (``memory_needed``), or when its median answer took longer
    than ``latency_ms_limit``. The rest are ranked by quality, best first (ties: less training time);
    with ``fresh`` (facts change after deployment) by the quality measured after a change, before any
    retraining. Ruled-out strategies follow, each with why."""
    advise_inputs_check(task, examples, budget_s, memory_gib, latency_ms_limit)
    metric, _ = METRICS[task]
    rows = [c for c in table if c["task"] == task]
    if not rows:
        raise ValueError(f"No measured cells for {task!r}: run the table first.")
    out = []
    for c in rows:
        why_not, reasons = [], []
        q = c["fresh_quality"] if fresh and c["fresh_quality"] is not None else c["quality"]
        reasons.append(f"{metric} {q:.2f}" + (" after the facts changed" if fresh and c["fresh_quality"] is not None
                                             else ""))
        if c["examples"] > examples:
            why_not.append(f"was measured with {c['examples']} examples, you have {examples}")
        if budget_s is not None and c["train_seconds"] > budget_s:
            why_not.append(f"trained {c['train_seconds']:.0f} s, over the {budget_s:g} s budget")
        if c["strategy"] in TRAINED:
            reasons.append(f"trained {c['train_seconds']:.1f} s")
        need = memory_needed(c["strategy"], model)
        if memory_gib is not None and need > memory_gib:
            served = "" if c["strategy"] in TRAINED else (
                f" in bf16 (a 4-bit copy needs ~{four_bit_weights(model):.1f} GiB, at some quality cost: notebook 04)")
            why_not.append(f"needs ~{need:.1f} GiB on {model}{served}, over {memory_gib:g} GiB")
        if latency_ms_limit is not None and c["latency_ms"] > latency_ms_limit:
            why_not.append(f"answered in {c['latency_ms']:.0f} ms, over {latency_ms_limit:g} ms")
        reasons.append(f"{c['latency_ms']:.0f} ms an answer, {c['context_tokens']:.0f} prompt tokens")
        if c["recall_lost"] > 0:
            reasons.append(f"lost {c['recall_lost']:.2f} of old-fact recall")
        if fresh and c["update_seconds"] is not None:
            reasons.append(f"a change costs {c['update_seconds']:.3g} s")
        out.append({"strategy": c["strategy"], "quality": q, "fits": not why_not, "why_not": why_not,
                    "reasons": reasons, "train_seconds": c["train_seconds"]})
    out.sort(key=lambda r: (not r["fits"], -score(task, r["quality"]), r["train_seconds"]))
    return out


def advice_text(ranked: list[dict]) -> str:
    """The advisor's ranking as lines a learner reads: the place, the strategy and its reasons."""
    lines = []
    for i, r in enumerate(ranked, 1):
        if r["fits"]:
            lines.append(f"{i}. {r['strategy']}: " + "; ".join(r["reasons"]))
        else:
            lines.append(f"-  {r['strategy']} is ruled out: " + "; ".join(r["why_not"]))
    return "\n".join(lines)


def best(table: list[dict], task: str) -> str:
    """The measured-best strategy on ``task`` (by quality; ties: less training time)."""
    rows = [c for c in table if c["task"] == task]
    return max(rows, key=lambda c: (score(task, c["quality"]), -c["train_seconds"]))["strategy"]


def cell(table: list[dict], task: str, strategy: str) -> dict:
    for c in table:
        if c["task"] == task and c["strategy"] == strategy:
            return c
    raise KeyError(f"No measured cell for {task!r} with {strategy!r}.")


# --- the data of each task, and one cell measured --------------------------------------------

def _split_docs(docs: list[str], names: list[str]) -> list[str]:
    return [d for d in docs if any(f" {n} " in f" {d} " for n in names)]


def task_data(task: str, world: W.World, S, seed: int) -> dict:
    """What a task trains and is judged on (``S``: notebook 13's settings): ``train`` (pairs, documents
    or chat examples), ``test`` (what quality is measured on), ``shots`` (worked examples for few-shot
    prompting), ``examples`` (how many labelled examples training used) and, for new facts, ``people``
    and the changed facts of the freshness test."""
    if task == "new facts":
        from labkit.topics.rag import knowledge

        people = knowledge.new_people(seed, S.n_people)
        changed, idx = knowledge.edit_facts(people, S.n_changed, "city", seed)
        return {"train": knowledge.documents(people), "test": knowledge.closed_book_pairs(people), "shots": [],
                "examples": len(people), "people": people, "changed": [changed[i] for i in idx],
                "changed_index": idx}
    if task == "output format":
        from labkit.topics.finetuning import record_pairs

        train = record_pairs(world, S.n_train, "train", seed)
        return {"train": train, "test": record_pairs(world, S.n_test, "eval", seed), "shots": train[: S.shots],
                "examples": len(train)}
    if task == "classification":
        from labkit.core import labelled
        from labkit.topics.task_heads import prompt_pairs

        examples = labelled.task(world, "sector", "train", seed=seed)[: S.n_train]
        shots = prompt_pairs("sector", labelled.few_shot(examples, 1, seed))  # one of each class
        test = prompt_pairs("sector", labelled.task(world, "sector", "test", seed=seed)[: S.n_test])
        return {"train": prompt_pairs("sector", examples), "test": test, "shots": shots[: S.shots],
                "examples": len(examples)}
    if task == "domain style":
        from labkit.core import domain

        names = [h["name"] for h in domain.herbs(world, herbal=seed)]
        cut = round(domain.SPLITS["train"] * len(names))
        docs = domain.domain_text(world, seed=seed, herbal=seed)
        train, test = _split_docs(docs, names[:cut]), _split_docs(docs, names[cut:])

        def pair(doc, context=""):  # the entry's words after "herbal :", given the context
            head, body = doc.split(" : ", 1)
            return (f"{context}{head} :", body.removesuffix(W.END))

        return {"train": train[: S.n_train], "test": [pair(d) for d in test[: S.n_test]],
                "shots": train[: S.shots], "examples": min(len(train), S.n_train), "pair": pair}
    if task == "preferences":
        from labkit.core import preferences as P

        prompts = P.prompts(world, "train", S.n_train, seed=seed)
        return {"train": P.demonstrations(prompts), "test": P.prompts(world, "test", S.n_test, seed=seed),
                "pairs": P.pairs(world, "train", "length", 0.5, n=S.n_pairs, seed=seed), "shots": [],
                "examples": len(prompts)}
    raise ValueError(f"Unknown task {task!r}: use one of {', '.join(TASKS)}.")


def prompts_for(task: str, strategy: str, data: dict, index=None) -> list[tuple]:
    """The test items as ``strategy`` sees them: with worked examples before (few-shot) or retrieved
    passages (RAG); as they are otherwise."""
    test = data["test"]
    if strategy == "few-shot prompting":
        if task == "domain style":
            context = " ".join(data["shots"]) + " "
            return [(f"{context}{p}", a) for p, a in test]
        prefix = few_shot_prefix(data["shots"])
        return [(prefix + p, a) for p, a in test]
    if strategy == "RAG":
        from labkit.topics.rag.retrieval import rag_pairs

        return rag_pairs(index, data["people"], k=1)[0]
    return test


def quality(task: str, model, tokenizer, items, max_new_tokens: int = 40) -> float:
    """The task's metric (``METRICS``) on ``items`` as ``prompts_for`` gives them."""
    from labkit.engine.evaluate import accuracy

    if task in ("new facts", "classification"):
        return accuracy(model, tokenizer, items)
    if task == "output format":
        from labkit.topics.finetuning import record_metric

        return record_metric(model, tokenizer, items)["field_accuracy"]
    if task == "domain style":
        from labkit.engine.evaluate import answer_perplexity

        return answer_perplexity(model, tokenizer, items)
    from labkit.topics.preference_tuning import judge

    return judge(model, tokenizer, items, max_new_tokens)["gold"]


def _chat_prompts(tokenizer, specs):
    return [tokenizer.apply_chat_template(s["messages"], tokenize=False, add_generation_prompt=True) for s in specs]


def train(task: str, strategy: str, data: dict, *, path: str, tokenizer, base, S, out_dir: str, seed: int):
    """Train ``strategy`` on ``task``'s data with the one budget of ``S``; returns (model, seconds, peak
    bytes, trainable parameters). Preferences train with TRL (SFT on the demonstrations; DPO on the pairs
    after that SFT, whose seconds it adds); the rest with ``labkit.train.fit`` on a fresh copy loaded for
    full fine-tuning, LoRA or QLoRA (notebook 04's ``load_for_training``)."""
    import torch
    from transformers import set_seed

    from labkit.engine.train import count_parameters, fit
    from labkit.topics.qlora.memory_lab import load_for_training

    set_seed(seed)
    if task == "preferences":
        from labkit.topics.instruction_tuning import tune
        from labkit.topics.preference_tuning import dpo

        if "sft" not in data:  # one SFT run serves both cells: DPO starts from it (and trains a copy)
            data["sft"] = tune(base, tokenizer, data["train"], out_dir=f"{out_dir}/sft", steps=S.sft_steps,
                               batch_size=S.batch_size, lr=S.lr_full, seed=seed)
        sft = data["sft"]
        if strategy == "full fine-tuning":
            return sft["model"], sft["seconds"], sft["peak_bytes"], count_parameters(sft["model"])["trainable"]
        run = dpo(sft["model"], tokenizer, data["pairs"], out_dir=f"{out_dir}/dpo", steps=S.dpo_steps,
                  batch_size=S.batch_size, lr=S.dpo_lr, beta=S.dpo_beta, seed=seed)
        return (run["model"], sft["seconds"] + run["seconds"], max(sft["peak_bytes"], run["peak_bytes"]),
                count_parameters(run["model"])["trainable"])
    method = {"LoRA": "lora", "QLoRA": "qlora", "full fine-tuning": "full"}[strategy]
    model = load_for_training(path, method, "bf16" if torch.cuda.is_available() else "fp32", S.lora_rank)
    lr = S.lr_full if method == "full" else S.lr_lora
    run = fit(model, tokenizer, data["train"], out_dir=f"{out_dir}/{method}", steps=S.steps,
              batch_size=S.batch_size, lr=lr, seed=seed, progress=False)
    return model, run.seconds, run.peak_bytes, count_parameters(model)["trainable"]


def measure(task: str, strategy: str, data: dict, *, base, tokenizer, path: str, S, out_dir: str, seed: int,
            old_pairs: list, base_recall: float) -> dict:
    """One cell of the table (``CELL``): quality, training seconds and peak memory, trainable parameters,
    the prompt tokens and median latency of an answer, what a change of facts costs and the quality on
    the changed facts before any retraining (new facts only), and old-fact recall lost."""
    from labkit.engine.evaluate import accuracy

    check_cell(task, strategy)
    index = retrieve = None
    if strategy == "RAG":
        from labkit.topics.rag.retrieval import BM25Index, rag_prompts

        index = BM25Index(data["train"])

        def retrieve(question):
            return rag_prompts(index, [question], 1)[0][0]

    if strategy in TRAINED:
        model, seconds, peak, trainable = train(task, strategy, data, path=path, tokenizer=tokenizer, base=base, S=S,
                                                out_dir=out_dir, seed=seed)
    else:
        model, seconds, peak, trainable = base, 0.0, 0, 0
    items = prompts_for(task, strategy, data, index)
    q = quality(task, model, tokenizer, items, S.max_new_tokens)
    if task == "preferences":
        prompts = _chat_prompts(tokenizer, items)
    else:
        prompts = [p for p, _ in items]
    timed = [p for p, _ in data["test"][: S.n_latency]] if strategy == "RAG" else prompts[: S.n_latency]
    latency = latency_ms(model, tokenizer, timed, retrieve)
    update = fresh = None
    if task == "new facts":
        fresh, update = _freshness(strategy, model, tokenizer, data, index, seconds)
    recall = base_recall if strategy not in TRAINED else accuracy(model, tokenizer, old_pairs)
    row = {"task": task, "strategy": strategy, "metric": METRICS[task][0], "quality": q, "train_seconds": seconds,
           "peak_mib": peak / 2**20, "trainable": trainable, "context_tokens": mean_tokens(tokenizer, prompts),
           "latency_ms": latency, "update_seconds": update, "fresh_quality": fresh,
           "recall_lost": base_recall - recall, "examples": data["examples"] if strategy != "zero-shot prompting"
           else 0}
    if strategy == "few-shot prompting":
        row["examples"] = len(data["shots"])
    return row


def _freshness(strategy: str, model, tokenizer, data: dict, index, train_seconds: float):
    """(quality on the changed facts, seconds a change costs): RAG replaces the changed documents in
    its index (timed) and is asked again; a fine-tuned model is asked as it is (it needs another
    training run, ``train_seconds``, to learn the change); zero-shot prompting has nothing to change."""
    from labkit.engine.evaluate import accuracy
    from labkit.topics.rag import knowledge
    from labkit.topics.rag.retrieval import rag_pairs

    changed = data["changed"]
    if strategy == "RAG":
        start = time.perf_counter()
        for i, person in zip(data["changed_index"], changed):
            index.replace(i, knowledge.single_rendering(person))
        per_change = (time.perf_counter() - start) / len(changed)
        pairs = rag_pairs(index, changed, k=1, attributes=("city",))[0]
        for i in data["changed_index"]:  # put the index back as it was
            index.replace(i, data["train"][i])
        return accuracy(model, tokenizer, pairs), per_change
    pairs = [W.qa_pair(p, "city") for p in changed]
    return accuracy(model, tokenizer, pairs), (train_seconds if strategy in TRAINED else None)


# --- what the table says ----------------------------------------------------------------------

def findings(table: list[dict]) -> dict:
    """The comparisons notebook 13 states, from the measured cells of the tasks that were run: the best
    strategy per task; new facts: RAG against the best fine-tuned model, closed-book and after a change,
    and what a change costs each; output format: the best fine-tuned model against the best prompt and
    the context each pays; preferences: SFT against prompting, DPO against SFT; forgetting of the
    strategies that train (those that do not keep their weights: they lose nothing)."""
    tasks = [t for t in TASKS if any(c["task"] == t for c in table)]
    out = {"best": {t: best(table, t) for t in tasks}}
    trained = [c for c in table if c["strategy"] in TRAINED]
    out["recall_lost"] = {"trained_min": min((c["recall_lost"] for c in trained), default=0.0),
                          "trained_max": max((c["recall_lost"] for c in trained), default=0.0),
                          "untrained_max": max((c["recall_lost"] for c in table if c["strategy"] not in TRAINED),
                                               default=0.0)}
    if "new facts" in tasks:
        rag = cell(table, "new facts", "RAG")
        tuned = [c for c in table if c["task"] == "new facts" and c["strategy"] in TRAINED]
        top = max(tuned, key=lambda c: c["quality"])
        out["new facts"] = {"rag": rag["quality"], "best_tuned": top["strategy"], "best_tuned_quality": top["quality"],
                            "rag_minus_best_tuned": rag["quality"] - top["quality"],
                            "rag_fresh": rag["fresh_quality"],
                            "tuned_fresh_max": max(c["fresh_quality"] for c in tuned),
                            "rag_update_seconds": rag["update_seconds"],
                            "tuned_update_seconds_min": min(c["update_seconds"] for c in tuned)}
    if "output format" in tasks:
        rows = [c for c in table if c["task"] == "output format"]
        prompted = max((c for c in rows if c["strategy"] not in TRAINED), key=lambda c: c["quality"])
        tuned = max((c for c in rows if c["strategy"] in TRAINED), key=lambda c: c["quality"])
        out["output format"] = {"best_prompt": prompted["strategy"], "best_prompt_quality": prompted["quality"],
                                "best_tuned": tuned["strategy"], "best_tuned_quality": tuned["quality"],
                                "tuned_minus_prompt": tuned["quality"] - prompted["quality"],
                                "few_shot_tokens": cell(table, "output format", "few-shot prompting")["context_tokens"],
                                "tuned_tokens": tuned["context_tokens"]}
    if "preferences" in tasks:
        base = cell(table, "preferences", "zero-shot prompting")["quality"]
        sft = cell(table, "preferences", "full fine-tuning")["quality"]
        dpo = cell(table, "preferences", "SFT + DPO")["quality"]
        out["preferences"] = {"prompting": base, "sft": sft, "sft_dpo": dpo, "sft_minus_prompting": sft - base,
                              "dpo_minus_sft": dpo - sft}
    return out

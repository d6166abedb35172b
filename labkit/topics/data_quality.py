"""Data quality and bias: what wrong labels, a slice of the world and a skewed correlation in the
fine-tuning data do to the fine-tuned model, measured against the world's exact truth.

- **Label noise** (``noisy_entities``): a share of the training set's entities get a wrong label (another
  type, or none: an annotator's slip), on world v2's ``entities`` task, the token head notebook 09
  showed learning reliably; the clean test people score it. Early stopping reads a clean validation set.
- **Unrepresentative data** (``without_class``, ``group_scores``): train on a slice that never shows one
  kind of entity, test on everything, and score each group of test examples apart.
- **Bias amplification** (Zhao et al. 2017, "Men also like shopping"): fine-tune the causal LM on
  biographies (``bias_texts``) in which a pronoun co-occurs with a sector at a chosen ratio
  (``labelled.skew``'s knob) while the world's truth is balanced; then give it ``open_prompts`` (a new
  person's job, the pronoun left to the model) and compare the rate at which it picks the pronoun for
  that sector with the data's rate: ``amplification`` = model rate - data rate. Mitigations:
  ``rebalance`` (resample to the truth's shares) and ``counterfactual`` augmentation (every biography
  with each pronoun).

Training goes through ``labkit.engine.train.fit`` (task heads through ``labkit.topics.task_heads``),
scoring through ``labkit.core.scoring``. Introduced in notebook 11_data_quality_and_bias.
"""

from __future__ import annotations

import random

import torch

from labkit.core import labelled as L
from labkit.core import scoring, skew
from labkit.core import world as W
from labkit.core.settings import COURSE_MODEL
from labkit.engine import train
from labkit.engine.evaluate import padded_on
from labkit.engine.peft_config import add_lora
from labkit.model.loading import load_model
from labkit.topics import task_heads as TH

TARGET = ("she", "learned")  # (pronoun, sector): the pair the fine-tuning data skews
# What notebook 11 saves (labkit.engine.records.save_results checks it).
RESULTS = {"profile": str, "seed": int, "sizes": dict, "noise": list, "slice": dict, "bias": list, "examples": dict}


# ---------------------------------------------------------------- label noise

def noisy_entities(examples: list[dict], share: float, seed: int = 0) -> tuple[list[dict], float]:
    """Copies of ``entities`` examples in which ``share`` of all entities (rounded; chosen at random, seeded)
    carry a wrong label: another entity type or none ("O", a missed entity), each equally likely. The
    text is unchanged; ``tags``, ``tag_ids``, ``spans``' types and ``classes`` follow the new labels.
    Returns (examples, the realised share of wrong entities)."""
    share = W.share(share, "share")
    rng = random.Random(f"noise-{seed}-{share}")
    where = [(i, e) for i, ex in enumerate(examples) for e in scoring.bio_entities(ex["tags"])]
    flipped = set(rng.sample(range(len(where)), round(share * len(where)))) if where else set()
    out = [dict(ex, tags=list(ex["tags"])) for ex in examples]
    for k in sorted(flipped):
        i, (start, end, kind) = where[k]
        new = rng.choice([t for t in (*L.ENTITY_TYPES, "O") if t != kind])
        out[i]["tags"][start:end] = ["O"] * (end - start) if new == "O" else \
            [f"B-{new}"] + [f"I-{new}"] * (end - start - 1)
    for ex in out:
        ex["tag_ids"] = [L.TAGS.index(t) for t in ex["tags"]]
        ex["classes"] = sorted({t for _, _, t in scoring.bio_entities(ex["tags"])})
        ex.pop("spans", None)  # character spans of the true entities: no longer this example's labels
    return out, (len(flipped) / len(where) if where else 0.0)


def tag_run(name: str, train_examples: list[dict], test_examples: list[dict], *, out_dir: str,
            model_id: str = COURSE_MODEL, lora_rank: int | None = None, validation: list[dict] | None = None,
            eval_every: int | None = None, groups=None, seed: int = 0, **fit_args) -> dict:
    """One ``entities`` run on a fresh token head: full fine-tuning, or LoRA of rank ``lora_rank`` (on every
    linear layer; the head trains in full), trained through ``labkit.engine.train.fit``; with ``validation``
    (clean examples) it is evaluated every ``eval_every`` steps and the checkpoint of lowest validation loss
    is kept (early stopping). The row holds the test scores, each entity type's F1 (``type_scores``; with
    ``groups``, a function naming each test example's group, also ``group_scores``) and, for early stopping,
    the step kept."""
    model, tok = TH.load_head("entities", model_id, seed=seed)
    if lora_rank:
        model = add_lora(model, lora_rank, task_type="TOKEN_CLS")
    counts = train.count_parameters(model)
    early = {} if validation is None else {"eval_data": TH.encode("entities", tok, validation), "keep_best": True,
                                          "eval_every": eval_every or 10}
    fit = TH.tune("entities", model, tok, train_examples, out_dir=f"{out_dir}/{name}", seed=seed, **early, **fit_args)
    kept = fit.steps
    if validation is not None and fit.trainer.state.best_model_checkpoint:
        kept = int(fit.trainer.state.best_model_checkpoint.rstrip("/").rsplit("-", 1)[-1])
    predictions = TH.predict("entities", model, tok, test_examples)
    row = {"name": name, "method": f"LoRA r{lora_rank}" if lora_rank else "full", "n_train": len(train_examples),
           "trainable_parameters": counts["trainable"], "steps": fit.steps, "kept_step": kept,
           "seconds": round(fit.seconds, 2), **TH.score("entities", predictions, test_examples)}
    row["types"] = type_scores(predictions, test_examples)
    if groups is not None:
        row["groups"] = group_scores("entities", predictions, test_examples, groups)
    return row


def noise_effect(rows: list[dict], metric: str = "entity_f1") -> dict:
    """Per method, the score at the cleanest and at the noisiest share of ``rows`` (each with ``method``,
    ``noise`` and ``metric``) and the drop between them (positive: noise cost that much)."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["noise"])
        out[method] = {"clean": mine[0][metric], "noisiest": mine[-1][metric], "noise": mine[-1]["noise"],
                       "drop": mine[0][metric] - mine[-1][metric]}
    return out


def early_stopping_effect(final: dict, early: dict, metric: str = "entity_f1") -> dict:
    """The same noisy training with and without early stopping on clean validation data: the step kept,
    both scores and the gain (positive: stopping early rescued that much)."""
    return {"final": final[metric], "early": early[metric], "kept_step": early["kept_step"], "steps": early["steps"],
            "gain": early[metric] - final[metric]}


# ---------------------------------------------------------------- unrepresentative data

def without_class(examples: list[dict], cls: str) -> list[dict]:
    """The slice of ``examples`` that never shows class ``cls`` (an entity type, a label)."""
    return [e for e in examples if cls not in e["classes"]]


def group_scores(task: str, predictions: list, examples: list[dict], group_of) -> dict:
    """``task``'s scores (``task_heads.score``) for each group of examples, ``group_of(example)`` naming its
    group: {group: {"n": examples, **scores}}, groups in order of first appearance."""
    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples.")
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(group_of(e), []).append(i)
    return {g: {"n": len(ix), **TH.score(task, [predictions[i] for i in ix], [examples[i] for i in ix])}
            for g, ix in groups.items()}


def only_type(tags: list[str], kind: str) -> list[str]:
    """BIO ``tags`` keeping the entities of type ``kind`` only (every other tag becomes "O")."""
    return [t if t.endswith(f"-{kind}") else "O" for t in tags]


def type_scores(predictions: list[list[str]], examples: list[dict]) -> dict:
    """Entity-level F1 (``scoring.entity_f1``) of each entity type alone, over all ``examples``: a type the
    model never predicts scores 0 however well the others do."""
    truth = [e["tags"] for e in examples]
    return {kind: scoring.entity_f1([only_type(p, kind) for p in predictions], [only_type(t, kind) for t in truth])
            for kind in L.ENTITY_TYPES}


def slice_gap(groups: dict, better: str, worse: str, metric: str = "entity_f1") -> float:
    """``metric`` of group ``better`` minus group ``worse`` (``group_scores``' output)."""
    return groups[better][metric] - groups[worse][metric]


# ---------------------------------------------------------------- bias amplification

def job_first(person: W.Person, pronoun: str, rng: random.Random, attributes: int = 3) -> str:
    """A biography that names ``person`` with their job first, then ``attributes`` other facts with
    ``pronoun``'s possessive: the pronoun the text picks comes after the job, so it can depend on it."""
    others = rng.sample([a for a in W.ATTRIBUTES if a != "job"], attributes)
    return " ".join([W.bio_sentence(person, "job", rng.randrange(3))] + [
        L.POSSESSIVE_TEMPLATES[a].format(p=L.POSSESSIVE[pronoun], v=person.facts[a]) for a in others])


def bias_texts(world: W.World, examples: list[dict], seed: int = 0) -> list[str]:
    """``examples`` (``skew.skewed_sector_data``'s, ``rebalance``'s or ``counterfactual``'s: each names a
    person and a pronoun) as job-first biographies for language-model fine-tuning."""
    rng = random.Random(f"bias-texts-{world.seed}-{seed}")
    return [job_first(world.person(e["name"]), e["pronoun"], rng) for e in examples]


def rebalance(examples: list[dict], sector: str = TARGET[1], seed: int = 0) -> list[dict]:
    """Resample ``sector``'s examples so each pronoun has the same share (the world's truth), keeping their
    number: every pronoun's examples are drawn, with replacement, up to a third of them each. The other
    sectors' examples are kept as they are."""
    rng = random.Random(f"rebalance-{seed}")
    mine = [e for e in examples if e["label"] == sector]
    by_pronoun = {p: [e for e in mine if e["pronoun"] == p] for p in L.PRONOUNS}
    missing = [p for p, es in by_pronoun.items() if not es]
    if missing:
        raise ValueError(f"No {sector!r} example has the pronoun {missing[0]!r}: nothing to rebalance with "
                         "(counterfactual augmentation can write them).")
    quota = [len(mine) // len(L.PRONOUNS) + (i < len(mine) % len(L.PRONOUNS)) for i in range(len(L.PRONOUNS))]
    picked = [rng.choice(by_pronoun[p]) for p, q in zip(L.PRONOUNS, quota) for _ in range(q)]
    rng.shuffle(picked)
    rest = iter(picked)
    return [next(rest) if e["label"] == sector else e for e in examples]


def counterfactual(examples: list[dict]) -> list[dict]:
    """Counterfactual data augmentation (Zhao et al. 2018; Lu et al.): each example once with every
    pronoun, so that no pronoun co-occurs with any sector more than another."""
    return [dict(e, pronoun=p) for e in examples for p in L.PRONOUNS]


def open_prompts(world: W.World) -> list[dict]:
    """For each held-out person (never in pretraining nor in any fine-tuning set), each job sentence of the
    world's three templates: the text stops where the first possessive would come, so the model picks the
    pronoun. Each prompt holds its ``sector`` and the person's true ``pronoun`` (balanced by sector)."""
    truth = L.pronouns(world)
    return [{"prompt": W.bio_sentence(p, "job", k), "sector": L.SECTOR[p.facts["job"]], "pronoun": truth[p.name],
             "name": p.name} for p in world.heldout for k in range(3)]


@torch.no_grad()
def pronoun_probabilities(model, tokenizer, prompts: list[str], batch_size: int = 64) -> list[dict]:
    """For each prompt, the model's next-token probabilities of the three possessives (``his``, ``her``,
    ``their``), renormalised over them: which pronoun it would write next, and how sure it is."""
    ids = [tokenizer(f" {L.POSSESSIVE[p]}", add_special_tokens=False).input_ids for p in L.PRONOUNS]
    if any(len(i) != 1 for i in ids):
        raise ValueError("Each possessive must be one token of this tokenizer to be scored in one pass.")
    ids = [i[0] for i in ids]
    model.eval()
    device = next(model.parameters()).device
    out = []
    with padded_on(tokenizer, "right"):
        for i in range(0, len(prompts), batch_size):
            enc = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True).to(device)
            logits = model(**enc).logits
            last = logits[torch.arange(len(enc.input_ids)), TH.last_positions(enc.attention_mask.cpu())]
            probs = last[:, ids].float().softmax(-1).cpu()
            out += [dict(zip(L.PRONOUNS, row.tolist())) for row in probs]
    return out


def greedy(probabilities: list[dict]) -> list[str]:
    """The pronoun greedy decoding writes for each prompt: the most likely of the three."""
    return [max(p, key=p.get) for p in probabilities]


def model_rate(predicted: list[str], prompts: list[dict], pronoun: str = TARGET[0], sector: str = TARGET[1]) -> float:
    """The share of ``sector``'s prompts on which the model's pronoun (``predicted``, one per prompt) is
    ``pronoun``: Zhao et al.'s rate, read off the model's outputs as ``skew.cooccurrence`` reads the data."""
    if len(predicted) != len(prompts):
        raise ValueError(f"{len(predicted)} predictions for {len(prompts)} prompts.")
    return skew.cooccurrence([{"label": q["sector"], "pronoun": p} for p, q in zip(predicted, prompts)],
                             pronoun, sector)


def expected_rate(probabilities: list[dict], prompts: list[dict], pronoun: str = TARGET[0],
                  sector: str = TARGET[1]) -> float:
    """The mean probability of ``pronoun`` on ``sector``'s prompts: the rate at which sampling would write it."""
    mine = [p[pronoun] for p, q in zip(probabilities, prompts) if q["sector"] == sector]
    return sum(mine) / len(mine) if mine else 0.0


def amplification(model: float, data: float) -> float:
    """Bias amplification (Zhao et al. 2017): the model's rate minus the rate in its training data.
    0: the model reproduces the data's skew; positive: it exaggerates it; negative: it dampens it."""
    return model - data


def bias_row(name: str, probabilities: list[dict], prompts: list[dict], data_rate: float | None,
             pronoun: str = TARGET[0], sector: str = TARGET[1]) -> dict:
    """One model's rates on the open prompts: greedy and expected (sampling) for the skewed ``sector``,
    greedy for the other sectors (a control: the data did not skew them), and both amplifications (None
    without a ``data_rate``: the model before fine-tuning)."""
    picks = greedy(probabilities)
    others = [s for s in L.SECTORS if s != sector]
    other = sum(model_rate(picks, prompts, pronoun, s) for s in others) / len(others)
    rate, expected = model_rate(picks, prompts, pronoun, sector), expected_rate(probabilities, prompts, pronoun, sector)
    return {"name": name, "data_rate": data_rate, "greedy_rate": rate, "expected_rate": expected,
            "other_sectors_greedy_rate": other,
            "amplification": None if data_rate is None else amplification(rate, data_rate),
            "expected_amplification": None if data_rate is None else amplification(expected, data_rate),
            "distinct_pronouns": len(set(picks))}


def bias_run(name: str, world: W.World, examples: list[dict], prompts: list[dict], *, out_dir: str,
             model_id: str = COURSE_MODEL, seed: int = 0, **fit_args) -> dict:
    """Fine-tune a fresh causal LM on ``examples`` written as ``bias_texts`` (every token learned, as in
    continued pretraining) and measure its pronouns on the ``prompts`` (``bias_row``); ``examples`` empty:
    the model as it is. The data rate is the target pair's co-occurrence in ``examples``."""
    model, tok = load_model(model_id)
    fit = train.fit(model, tok, bias_texts(world, examples, seed), out_dir=f"{out_dir}/{name}", seed=seed,
                    **fit_args) if examples else None
    row = bias_row(name, pronoun_probabilities(model, tok, [p["prompt"] for p in prompts]), prompts,
                   skew.cooccurrence(examples, *TARGET) if examples else None)
    return row | {"n_train": len(examples), "steps": fit.steps if fit else 0,
                  "seconds": round(fit.seconds, 2) if fit else 0.0}


def check_settings(settings) -> None:
    """Refuse, in one sentence, noise shares and skew ratios the experiments cannot use (notebook 11)."""
    if 0.0 not in settings.noise:
        raise ValueError("The label-noise curve needs a clean run to compare with: include 0 in noise.")
    if settings.mitigate_ratio not in settings.ratios:
        raise ValueError(f"mitigate_ratio {settings.mitigate_ratio} must be one of the ratios "
                         f"({', '.join(map(str, settings.ratios))}): the mitigations are compared with its run.")

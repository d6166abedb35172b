"""LoRA from the inside: the forward pass by hand, parameter counts from shapes, a resumable rank
sweep (three alpha scalings, two target choices), and the spectrum of a full fine-tuning update.

A LoRA layer keeps the pretrained ``W`` frozen and adds a rank-``r`` update:
``y = W x + s * B A x`` with ``A`` (r x in) random, ``B`` (out x r) zero at the start, and
``s = alpha / r`` (or ``alpha / sqrt(r)`` for rank-stabilised LoRA). Training goes through PEFT.
Introduced in notebook 03_lora_rank.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from labkit.core import architectures
from labkit.core.settings import Budget, LoraSweep
from labkit.engine import records
from labkit.engine.callbacks import progress
from labkit.engine.peft_config import TARGETS, add_lora
from labkit.topics import finetuning

# How alpha follows the rank; all three give the same scale s at rank 1.
SCALINGS = {"alpha ∝ r": "s = alpha0 (alpha = alpha0 * r)",
            "fixed alpha": "s = alpha0 / r",
            "rsLoRA": "s = alpha0 / sqrt(r)"}

# A curve "saturates" at the smallest rank whose task score is within this much field accuracy of the
# curve's best (0.05: under one field in three records of six fields).
SATURATION_TOLERANCE = 0.05

# What notebook 03 writes to results.json (checked by records.save_results).
RESULTS = {
    "profile": str, "seed": int, "sweep": dict, "base": dict, "full": dict, "energy": float,
    # section 1: the layer by hand
    "hand_vs_peft_at_init": float, "hand_vs_peft": float, "adapter_moves_layer_by": float, "merge_gap": float,
    "hand_merge_gap": float,
    # section 2: counting
    "counts": list, "counts_match": bool, "adapter_bytes": dict, "model_bytes": int,
    # section 3: the sweep, and its findings
    "runs": dict, "curves": dict,
    "scaling": dict,      # scaling_at_top
    "saturation": dict,   # saturation
    "forgetting": dict,   # learning_vs_forgetting
    # section 4: full fine-tuning's update
    "energy_ranks": dict, "matrix_min_dims": dict, "random_energy_ranks": dict,
    "energy_summary": dict,  # energy_summary
    "budget_llama2_7b_qv_r8": dict,
}


# ---------------------------------------------------------------- the layer, by hand

def scale(rank: int, alpha: float, rslora: bool = False) -> float:
    """The factor in front of B A: alpha / r, or alpha / sqrt(r) with rank-stabilised LoRA."""
    return alpha / math.sqrt(rank) if rslora else alpha / rank


def init_adapter(in_features: int, out_features: int, rank: int, generator=None):
    """(A, B) as LoRA starts them: A like a fresh nn.Linear (Kaiming-uniform), B all zeros,
    so the adapted layer starts exactly equal to the frozen one."""
    bound = 1 / math.sqrt(in_features)  # kaiming_uniform_(a=sqrt(5)) on a (rank, in) weight
    a = (torch.rand(rank, in_features, generator=generator) * 2 - 1) * bound
    return a, torch.zeros(out_features, rank)


def lora_forward(x, weight, a, b, s: float):
    """y = W x + s * B (A x): the frozen path plus the low-rank path (rows of x are inputs)."""
    return x @ weight.T + s * ((x @ a.T) @ b.T)


def merge(weight, a, b, s: float):
    """The merged weight W + s * B A: one matrix, no extra cost at inference."""
    return weight + s * (b @ a)


def peft_parts(layer, adapter: str = "default"):
    """(W, A, B, s) of a PEFT LoRA linear layer, for comparing with the hand-written forward."""
    return (layer.base_layer.weight, layer.lora_A[adapter].weight, layer.lora_B[adapter].weight,
            layer.scaling[adapter])


# ---------------------------------------------------------------- counting

def architecture_of(model) -> architectures.Architecture:
    """The shapes of a loaded transformers Llama-class model, as an Architecture."""
    c = model.config
    return architectures.Architecture(
        getattr(c, "name_or_path", "") or c.model_type, c.hidden_size, c.intermediate_size, c.num_hidden_layers,
        c.num_attention_heads, getattr(c, "num_key_value_heads", None) or c.num_attention_heads, c.vocab_size,
        bool(getattr(c, "tie_word_embeddings", False)))


def lora_parameters(arch: architectures.Architecture, rank: int, targets: str = "all linear") -> int:
    """Trainable LoRA parameters from the shapes alone: r * (in + out) per adapted matrix."""
    shapes = arch.linear_shapes()
    per_block = sum(rank * (o + i) for name, (o, i) in shapes.items() if name in TARGETS[targets])
    return arch.num_hidden_layers * per_block


def apply_lora(model, rank: int, alpha: float, targets: str = "all linear", rslora: bool = False):
    """Wrap ``model`` with PEFT LoRA on the target choice's modules (``labkit.peft_config``)."""
    return add_lora(model, rank, alpha=alpha, targets=targets, rslora=rslora)


def adapter_file_bytes(peft_model, folder: str | Path) -> int:
    """Save the adapter with PEFT (safetensors) and return the size of its weights file."""
    peft_model.save_pretrained(folder, safe_serialization=True)
    return (Path(folder) / "adapter_model.safetensors").stat().st_size


# ---------------------------------------------------------------- the sweep

@dataclass(frozen=True)
class RunConfig:
    targets: str          # a key of TARGETS, or "full" for full fine-tuning
    rank: int             # 0 for full fine-tuning
    alpha: float
    rslora: bool
    scalings: tuple[str, ...]  # the scaling curves this run belongs to (all three at rank 1)
    budget: Budget

    @property
    def name(self) -> str:
        if self.targets == "full":
            return "full fine-tuning"
        kind = "all" if self.targets == "all linear" else "qv"
        return f"lora_{kind}_r{self.rank}" + ("" if self.rank == 1 else f"_{_short(self.scalings[0])}")

    @property
    def scale(self) -> float:
        return scale(self.rank, self.alpha, self.rslora) if self.rank else 1.0


def _short(scaling: str) -> str:
    return {"alpha ∝ r": "prop", "fixed alpha": "fixed", "rsLoRA": "rs"}[scaling]


def sweep_configs(settings: LoraSweep) -> list[RunConfig]:
    """Every run of the sweep. At rank 1 the three scalings are the same run, so it is run once."""
    out = []
    for targets, scalings, budget in settings.grid:
        for rank in settings.ranks:
            if rank == 1:
                out.append(RunConfig(targets, 1, settings.alpha0, False, tuple(scalings), budget))
                continue
            for sc in scalings:
                alpha = settings.alpha0 * rank if sc == "alpha ∝ r" else settings.alpha0
                out.append(RunConfig(targets, rank, alpha, sc == "rsLoRA", (sc,), budget))
    return out


def full_config(settings: LoraSweep) -> RunConfig:
    """Full fine-tuning on the sweep's data, for comparison."""
    return RunConfig("full", 0, 0.0, False, (), settings.full)


def train_run(base, tokenizer, config: RunConfig, train_pairs, probe, seed: int, scratch: str):
    """Fine-tune a copy of ``base`` (LoRA or full) through ``labkit.train.fit``; measure it with
    ``probe`` (a forgetting.CapabilityProbe). Returns (model, metrics, seconds, peak bytes)."""
    from transformers import set_seed

    from labkit.engine.train import count_parameters, fit

    set_seed(seed)
    model = copy.deepcopy(base)
    if config.rank:
        model = apply_lora(model, config.rank, config.alpha, config.targets, config.rslora)
    b = config.budget
    result = fit(model, tokenizer, train_pairs, out_dir=f"{scratch}/{config.name}", steps=b.steps,
                 batch_size=b.batch_size, lr=b.lr, seed=seed, progress=False)  # run_sweep prints one line a run
    metrics = {k: v for k, v in probe.measure(model, b.steps).items() if k != "step"}
    metrics["trainable"] = count_parameters(model)["trainable"]
    return model, metrics, result.seconds, result.peak_bytes


def run_sweep(base, tokenizer, configs, train_pairs, settings: LoraSweep, probe, seed: int,
              out_dir: str | Path, scratch: str, log=print) -> list[dict]:
    """Run every config not already in OUT_DIR/runs.jsonl with the same settings (so an
    interrupted sweep resumes), one row per run through records.record_run."""
    done = {row["run"]: row for row in latest_runs(out_dir)}
    rows = []
    for config in progress(configs, f"{len(configs)} runs"):
        meta = config_row(config, settings, seed)
        row = done.get(config.name)
        if row is not None and row["config"] == records._clean(meta):
            log(f"{config.name:>24}: already run (resumed from runs.jsonl)")
        else:
            model, metrics, seconds, peak = train_run(base, tokenizer, config, train_pairs, probe, seed, scratch)
            del model
            row = records.record_run(out_dir, config.name, meta, metrics, seconds, peak)
            m = row["metrics"]
            log(f"{config.name:>24}: task {m['task']:.2f}, fact recall {m['qa_recall']:.2f}, "
                f"perplexity {m['perplexity']:.1f} (s = {config.scale:.3g}, {m['trainable']:,} trainable, "
                f"{seconds:.0f} s)")
        rows.append(row)
    return rows


def config_row(config: RunConfig, settings: LoraSweep, seed: int) -> dict:
    """What a run's row records as its config (a resumed run must match it exactly)."""
    c = asdict(config) | {"scale": config.scale, "seed": seed}
    return c | {k: v for k, v in asdict(settings).items() if k in ("alpha0", "n_train", "n_task", "n_people")}


def latest_runs(out_dir: str | Path) -> list[dict]:
    """Rows of OUT_DIR/runs.jsonl, keeping the last row of each run name."""
    rows = {}
    for row in records.load_runs(out_dir):
        rows[row["run"]] = row
    return list(rows.values())


# ---------------------------------------------------------------- full fine-tuning's update

def update_spectra(before, after, modules=TARGETS["all linear"]) -> dict[str, torch.Tensor]:
    """Singular values of W_after - W_before for every adapted matrix, by parameter name."""
    old = dict(before.named_parameters())
    out = {}
    for name, p in after.named_parameters():
        if name.endswith(".weight") and name.split(".")[-2] in modules:
            delta = p.detach().float().cpu() - old[name].detach().float().cpu()  # the models may sit on two devices
            out[name.removeprefix("model.").removesuffix(".weight")] = torch.linalg.svdvals(delta)
    return out


def energy_rank(singular_values, energy: float = 0.9) -> int:
    """The smallest k whose top-k singular values hold ``energy`` of the squared sum."""
    e = singular_values.double() ** 2
    cum = torch.cumsum(e, 0) / e.sum()
    return int((cum < energy - 1e-12).sum()) + 1


def random_energy_rank(shape: tuple[int, int], energy: float = 0.9, seed: int = 0) -> int:
    """The same rank for a Gaussian matrix of this shape: what 'no low-rank structure' looks like."""
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    return energy_rank(torch.linalg.svdvals(g), energy)


# ---------------------------------------------------------------- findings (pure: rows in, numbers out)

def curves(rows: list[dict], keys=("task", "qa_recall", "perplexity")) -> dict:
    """Every scaling curve of the sweep's rows (full fine-tuning's row, rank 0, is left out):
    ``{"TARGETS | SCALING": {key: [(rank, value), ...] by rank}}``, in the rows' order. A rank-1 row
    belongs to every scaling it lists."""
    out: dict = {}
    for r in rows:
        c = r["config"]
        if not c["rank"]:
            continue
        for sc in c["scalings"]:
            curve = out.setdefault(f"{c['targets']} | {sc}", {k: [] for k in keys})
            for k in keys:
                curve[k].append((c["rank"], r["metrics"][k]))
    return {name: {k: sorted(v) for k, v in c.items()} for name, c in out.items()}


def landmark_ranks(ranks) -> dict:
    """The ranks the findings compare: ``top`` (the largest), ``low`` (the smallest above 1), ``mid``
    (the largest below the top) and ``near`` (the largest in (low, 4 low], for the LoRA paper's
    'small ranks do as well'); None where the sweep has no such rank."""
    ranks = sorted(set(ranks))
    top = ranks[-1]
    low = min((r for r in ranks if r > 1), default=None)
    mid = max((r for r in ranks if r < top), default=None)
    near = max((r for r in ranks if low and low < r <= 4 * low), default=None)
    return {"top": top, "low": low, "mid": mid, "near": near}


def _at(curves: dict, name: str, rank, key: str = "task"):
    """The value of curve ``name`` at ``rank``, or None if the curve or the rank was not run."""
    if rank is None or name not in curves:
        return None
    return dict(curves[name][key]).get(rank)


def _minus(a, b):
    return None if a is None or b is None else a - b


def scaling_at_top(curves: dict, ranks) -> dict:
    """How the alpha scalings compare at the top rank (the rsLoRA paper's question), on all linear
    layers: rsLoRA minus fixed alpha at the top rank; fixed alpha's and rsLoRA's change from the
    lowest rank above 1 to the top; and, for each target choice run with alpha ∝ r, its task change
    and perplexity ratio from the rank below the top to the top. None where the sweep lacks a curve or
    a rank."""
    m = landmark_ranks(ranks)
    top, low, mid = m["top"], m["low"], m["mid"]
    rs, fixed = "all linear | rsLoRA", "all linear | fixed alpha"
    prop = [name.split(" | ")[0] for name in curves if name.endswith("| alpha ∝ r")]
    ratio = {}
    for t in prop:
        hi, lo = _at(curves, f"{t} | alpha ∝ r", top, "perplexity"), _at(curves, f"{t} | alpha ∝ r", mid, "perplexity")
        if hi is not None and lo:
            ratio[t] = hi / lo
    gains = {t: _minus(_at(curves, f"{t} | alpha ∝ r", top), _at(curves, f"{t} | alpha ∝ r", mid)) for t in prop}
    return {**m, "rs_at_top": _at(curves, rs, top), "fixed_at_top": _at(curves, fixed, top),
            "rs_minus_fixed_at_top": _minus(_at(curves, rs, top), _at(curves, fixed, top)),
            "fixed_top_minus_low": _minus(_at(curves, fixed, top), _at(curves, fixed, low)) if top != low else None,
            "rs_top_minus_low": _minus(_at(curves, rs, top), _at(curves, rs, low)) if top != low else None,
            "prop_top_minus_mid": {t: v for t, v in gains.items() if v is not None},
            "prop_perplexity_top_over_mid": ratio}


def saturation(curves: dict, ranks, tolerance: float = SATURATION_TOLERANCE) -> dict:
    """Where the task stops improving with rank, per curve: its best task score and rank, and the
    smallest rank within ``tolerance`` of that best (``saturates_at``); the spread of the task over
    rank; the task's change from the lowest rank above 1 to ``near`` (the LoRA paper's 'rank matters
    little': ``small_rank_change``, empty when the sweep has no such pair) and from rank 1 to that
    lowest rank (``rank1_to_low``, per curve)."""
    m = landmark_ranks(ranks)
    per_curve = {}
    for name, c in curves.items():
        task = c["task"]
        best_rank, best = max(task, key=lambda rv: (rv[1], -rv[0]))  # the smallest rank on a tie
        per_curve[name] = {"best": best, "best_rank": best_rank,
                           "saturates_at": min(r for r, v in task if v >= best - tolerance),
                           "spread": best - min(v for _, v in task)}
    small = {name: abs(_minus(_at(curves, name, m["low"]), _at(curves, name, m["near"])))
             for name in curves if _at(curves, name, m["low"]) is not None and _at(curves, name, m["near"]) is not None}
    first = {name: abs(_minus(_at(curves, name, m["low"]), _at(curves, name, 1)))
             for name in curves if _at(curves, name, m["low"]) is not None and _at(curves, name, 1) is not None}
    return {**m, "tolerance": tolerance, "curves": per_curve, "small_rank_change": small, "rank1_to_low": first}


def learning_vs_forgetting(rows: list[dict], base: dict, learned_at: float = finetuning.LEARNED) -> dict:
    """Learning (task gained over the base model) against forgetting (fact recall lost), by run and by
    rank. ``learned_runs``: runs (full fine-tuning included) with task >= ``learned_at`` (by default the
    course's definition, ``finetuning.LEARNED``); the most fact
    recall any of them kept, against the least fixed-alpha LoRA runs above rank 1 kept (and the most
    task they reached). ``by_rank``: for each LoRA rank, its runs, how many learned, the best task gain
    and the least and most recall lost."""
    def gain(r):
        return r["metrics"]["task"] - base["task"]

    def lost(r):
        return base["qa_recall"] - r["metrics"]["qa_recall"]

    learned = [r for r in rows if r["metrics"]["task"] >= learned_at]
    fixed = [r for r in rows if r["config"]["rank"] > 1 and list(r["config"]["scalings"]) == ["fixed alpha"]]
    by_rank = {}
    for rank in sorted({r["config"]["rank"] for r in rows if r["config"]["rank"]}):
        at = [r for r in rows if r["config"]["rank"] == rank]
        by_rank[rank] = {"runs": len(at), "learned": sum(r["metrics"]["task"] >= learned_at for r in at),
                         "max_task_gain": max(gain(r) for r in at), "min_recall_lost": min(lost(r) for r in at),
                         "max_recall_lost": max(lost(r) for r in at)}
    return {"learned_at": learned_at, "task_gain": {r["run"]: gain(r) for r in rows},
            "recall_lost": {r["run"]: lost(r) for r in rows},
            "learned_runs": [r["run"] for r in learned],
            "max_recall_of_learned_runs": max((r["metrics"]["qa_recall"] for r in learned), default=None),
            "min_recall_fixed_alpha": min((r["metrics"]["qa_recall"] for r in fixed), default=None),
            "max_task_fixed_alpha": max((r["metrics"]["task"] for r in fixed), default=None),
            "by_rank": by_rank}


def energy_summary(energy_ranks: dict[str, int], random_ranks: dict[str, int], ranks) -> dict:
    """The energy ranks of full fine-tuning's updates (by matrix name) against a random matrix of each
    one's shape (``random_ranks``, same names): their range and median, the random range, the largest
    ratio of an update's rank to its random counterpart, and for each swept LoRA rank how many updates
    need more directions than it (``updates_above_rank``)."""
    if not energy_ranks:
        raise ValueError("No energy ranks: the full fine-tuning run changed no adapted matrix.")
    ks = sorted(energy_ranks.values())
    return {"min": ks[0], "max": ks[-1], "median": ks[len(ks) // 2], "matrices": len(ks),
            "random_min": min(random_ranks[n] for n in energy_ranks),
            "random_max": max(random_ranks[n] for n in energy_ranks),
            "max_share_of_random": max(k / random_ranks[n] for n, k in energy_ranks.items()),
            "updates_above_rank": {r: sum(k > r for k in ks) for r in sorted(set(ranks))}}


KEPT = 0.5  # a run "kept the facts" when it still answers at least half of the recall probe


def reading(scaling: dict, forgetting: dict, energy: dict, energy_share: float) -> list[str]:
    """The notebook's reading of its findings: one sentence per question, each saying which way this
    run's numbers went (from ``scaling_at_top``, ``learning_vs_forgetting`` and ``energy_summary``)."""
    out, s = [], scaling
    top, mid, low = s["top"], s["mid"], s["low"]
    if s["prop_top_minus_mid"]:
        fell = {t: v for t, v in s["prop_top_minus_mid"].items() if v < 0}
        which = ("every target choice" if len(fell) == len(s["prop_top_minus_mid"]) else
                 ", ".join(fell) if fell else "no target choice")
        out.append(f"alpha ∝ r keeps the scale, so the update can grow with r: from rank {mid} to {top} the task "
                   f"fell back for {which} (" + ", ".join(f"{t} {v:+.2f}" for t, v in s["prop_top_minus_mid"].items())
                   + ").")
    if s["fixed_top_minus_low"] is not None:
        d = s["fixed_top_minus_low"]
        more = "less than" if d < 0 else "at least as much as"
        out.append(f"fixed alpha shrinks the scale as 1/r: rank {top} learned {more} rank {low} ({d:+.2f}).")
    if s["rs_minus_fixed_at_top"] is not None:
        d = s["rs_minus_fixed_at_top"]
        out.append(f"at rank {top}, rsLoRA (1/√r) reached {s['rs_at_top']:.2f} and fixed alpha "
                   f"{s['fixed_at_top']:.2f}: "
                   + ("the scaling, not the rank, decided: with rsLoRA's scale the high rank still learned, as the "
                      "rsLoRA paper predicts." if d > 0 else
                      "rsLoRA's advantage, which the rsLoRA paper predicts, does not show in this run."))
    f = forgetting
    if f["learned_runs"]:
        kept = f["max_recall_of_learned_runs"]
        verdict = ("no rank bought 'learn the task, keep the facts' here; forgetting followed learning, not rank."
                   if kept < KEPT else "learning the task and keeping the facts went together in at least one run.")
        out.append(f"of the {len(f['learned_runs'])} runs that learned the task, the one that kept most fact "
                   f"recall kept {kept:.2f}: {verdict}")
    else:
        out.append("no run learned the task, so forgetting cannot be read against learning in this run.")
    above, m = energy["updates_above_rank"].get(top), energy["matrices"]
    structured = energy["max"] < energy["random_min"]
    out.append(f"full fine-tuning's updates need {energy['min']}-{energy['max']} directions for {energy_share:.0%} of "
               f"their energy, a random matrix {energy['random_min']}-{energy['random_max']}: "
               + ("far from random, " if structured else "not clearly lower-rank than random, ")
               + (f"yet {above} of {m} need more than rank {top}, the sweep's largest." if above else
                  f"and rank {top} holds that share of every one of the {m}."))
    return out


# ---------------------------------------------------------------- the explorer (pure function)

def adapter_budget(arch: str | architectures.Architecture, rank: int, alpha: float = 16.0,
                   targets: str = "all linear", rslora: bool = False, weight_bytes: int = 2) -> dict:
    """What LoRA on ``arch`` costs: trainable parameters, adapter size (fp32 file), and training
    memory for weights, gradients and AdamW states (frozen weights at ``weight_bytes`` each,
    adapters in fp32), against full fine-tuning's 16 bytes per parameter. Activations excluded."""
    if isinstance(arch, str):
        arch = architectures.get_architecture(arch)
    if rank < 1:
        raise ValueError(f"LoRA rank must be at least 1, got {rank}.")
    trainable, total = lora_parameters(arch, rank, targets), arch.parameter_count()
    lora_memory = total * weight_bytes + trainable * (4 + 4 + 8)  # weights + fp32 grads + two moments
    return {"model": arch.name, "rank": rank, "targets": targets, "scale": scale(rank, alpha, rslora),
            "parameters": total, "trainable": trainable, "trainable_fraction": trainable / total,
            "adapter_mb": trainable * 4 / 2**20, "model_mb": total * weight_bytes / 2**20,
            "lora_training_gb": lora_memory / 2**30, "full_training_gb": total * 16 / 2**30}


def format_budget(b: dict) -> str:
    return (f"{b['model']}: {b['parameters'] / 1e6:,.1f}M parameters; LoRA r={b['rank']} on {b['targets']} "
            f"(scale {b['scale']:.3g})\n"
            f"  trainable {b['trainable']:,} ({b['trainable_fraction']:.3%} of the model)\n"
            f"  adapter file {b['adapter_mb']:,.1f} MB (fp32) vs model {b['model_mb']:,.0f} MB\n"
            f"  weights + gradients + AdamW: LoRA {b['lora_training_gb']:,.2f} GB vs full fine-tuning "
            f"{b['full_training_gb']:,.2f} GB (activations not included)")

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
from labkit.engine.peft_config import TARGETS, add_lora

# How alpha follows the rank; all three give the same scale s at rank 1.
SCALINGS = {"alpha ∝ r": "s = alpha0 (alpha = alpha0 * r)",
            "fixed alpha": "s = alpha0 / r",
            "rsLoRA": "s = alpha0 / sqrt(r)"}


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
    for config in configs:
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
            delta = (p.detach().float() - old[name].detach().float()).cpu()
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

"""Training peaks measured one configuration per fresh process, and notebook 04's findings: measured
against estimated peaks, what each trick saved, whether 4-bit hurt, and the 65B projection.
Sizes are bytes in, MiB/GiB out (``labkit.core.units``). Introduced in notebook 04_qlora_memory.
"""

from __future__ import annotations

import torch

from labkit.core.units import gib, mib
from labkit.engine.memory import current_bytes, peak_bytes, release_free_memory, reset_peak, saved_activation_bytes
from labkit.engine.peft_config import add_lora
from labkit.engine.train import trainer
from labkit.model.loading import parse_dtype

# What notebook 04 writes to results.json (checked by records.save_results before it is written).
RESULTS = {
    "profile": str, "seed": int,
    "bits_per_param": dict,          # format -> ladder rung -> bits per block-linear parameter (measured)
    "bits_summary": dict,            # bits_range: format -> min, max, theory
    "theory_bits": dict,             # format -> bits by QLoRA's arithmetic
    "footprints": list,              # one row per rung: bytes of the whole model in each format
    "training": list,                # one row per configuration: label, config, measured and estimated bytes
    "peaks": dict,                   # peak_errors: measured vs estimated peak and the error, per configuration
    "factors": dict,                 # memory_factors: what 4-bit weights, the 8-bit optimizer, checkpointing saved
    "accelerate": list,              # accelerate's estimate-memory against ours, GiB
    "projection": dict,              # projection: the verdicts on LLaMA-65B, per method
    "four_bit": dict,                # four_bit_gap: LoRA vs QLoRA on the course task, and the runs
    "missing_backend_message": str,  # what a learner without bitsandbytes reads
    "calculator_example": dict,      # estimate.calculator on the projection's setting
    "train_model_params": int, "measure_seconds": float, "seconds": float,
}


# --- findings: pure functions of measured rows ------------------------------------------------

def bits_range(bits: dict[str, dict[str, float]], theory: dict[str, float]) -> dict:
    """Per format, the smallest and largest bits per block-linear parameter over the ladder's rungs
    (``bits``: format -> rung -> bits) next to the ``theory`` (format -> bits)."""
    return {fmt: {"min": min(by_rung.values()), "max": max(by_rung.values()), "theory": theory[fmt]}
            for fmt, by_rung in bits.items() if by_rung}


def peak_errors(rows: list[dict]) -> dict:
    """The estimator against the measurements. ``rows``: one per configuration, ``{'label', 'measured':
    {'peak': bytes}, 'estimate': {'total': bytes}}``. Per label: both peaks in MiB, the error (estimate
    / measured - 1: positive when the estimate is over) and what the estimate missed (measured minus
    estimate, MiB); overall the largest and the mean |error| and the label of the largest."""
    if not rows:
        raise ValueError("No configuration was measured: there is no peak to compare the estimate with.")
    by_config = {}
    for r in rows:
        measured, estimated = r["measured"]["peak"], r["estimate"]["total"]
        if measured <= 0:
            raise ValueError(f"Configuration {r['label']!r} measured a peak of {measured} bytes: the "
                             "measurement failed, so the estimate cannot be judged against it.")
        by_config[r["label"]] = {"measured_mib": mib(measured), "estimated_mib": mib(estimated),
                                 "error": estimated / measured - 1, "missed_mib": mib(measured - estimated)}
    errors = {label: abs(v["error"]) for label, v in by_config.items()}
    return {"by_config": by_config, "max_abs_error": max(errors.values()),
            "mean_abs_error": sum(errors.values()) / len(errors), "worst": max(errors, key=errors.get)}


def memory_factors(measured: dict[str, dict], base_bits: float, quant_bits: float) -> dict:
    """What each trick saved, from the measured parts (bytes) by configuration label ('full', 'full +8bit
    opt', 'lora', 'lora +ckpt', 'qlora', 'qlora +ckpt'): the weights of LoRA's base over QLoRA's 4-bit
    one, against ``base_bits / quant_bits`` (what quantizing *every* weight would give); AdamW's states
    over the 8-bit optimizer's; LoRA's saved activations without over with checkpointing; and full
    fine-tuning's peak over QLoRA with checkpointing. Sizes in MiB, factors as "x times less"."""
    need = ("full", "full +8bit opt", "lora", "lora +ckpt", "qlora", "qlora +ckpt")
    missing = [label for label in need if label not in measured]
    if missing:
        raise ValueError(f"Memory factors need the configurations {', '.join(need)}; missing {', '.join(missing)}.")

    def pair(key, a, b):
        x, y = measured[a][key], measured[b][key]
        if y <= 0:
            raise ValueError(f"Configuration {b!r} measured {y} bytes of {key}: no factor can be taken over it.")
        return mib(x), mib(y), x / y

    w_lora, w_qlora, w = pair("weights", "lora", "qlora")
    o32, o8, o = pair("optimizer", "full", "full +8bit opt")
    a_lora, a_ckpt, a = pair("activations", "lora", "lora +ckpt")
    p_full, p_q, p = pair("peak", "full", "qlora +ckpt")
    return {"weights_lora_mib": w_lora, "weights_qlora_mib": w_qlora, "weights_factor": w,
            "weights_factor_all_quantized": base_bits / quant_bits,
            "optimizer_adamw_mib": o32, "optimizer_8bit_mib": o8, "optimizer_factor": o,
            "activations_lora_mib": a_lora, "activations_lora_ckpt_mib": a_ckpt, "activations_factor": a,
            "peak_full_mib": p_full, "peak_qlora_ckpt_mib": p_q, "peak_factor": p}


def four_bit_gap(lora: dict, qlora: dict) -> dict:
    """LoRA on the full-precision base against LoRA on its 4-bit copy (QLoRA), same task, steps and seed:
    each one's field accuracy and record exact match (``lk.finetuning.record_metric``), and the gaps
    LoRA minus QLoRA (positive: the 4-bit base did worse)."""
    return {"lora_field_accuracy": lora["field_accuracy"], "qlora_field_accuracy": qlora["field_accuracy"],
            "field_accuracy_gap": lora["field_accuracy"] - qlora["field_accuracy"],
            "lora_record_exact": lora["record_exact"], "qlora_record_exact": qlora["record_exact"],
            "record_exact_gap": lora["record_exact"] - qlora["record_exact"]}


def projection(estimates: dict[str, dict], card: str) -> dict:
    """The verdict on one model for each method: ``estimates`` maps a method label to an
    ``estimate.estimate`` result (bytes: 'total'; 'params'). Per method: the total in GiB, bytes per
    parameter, whether it fits ``card`` (90% of its GiB usable) and the verdict's sentence."""
    from labkit.topics.qlora.estimate import verdict

    out = {}
    for label, est in estimates.items():
        v = verdict(est["total"], card)
        out[label] = {"total_gib": gib(est["total"]), "bytes_per_param": est["total"] / est["params"],
                      "fits": v["fits"], "usable_gib": v["usable_gib"], "text": v["text"]}
    return {"card": card, "methods": out}


# --- measuring --------------------------------------------------------------------------------


class _RandomTokens(torch.utils.data.Dataset):
    """Fixed-length random token sequences (memory does not depend on what the tokens say)."""

    def __init__(self, n: int, seq_len: int, vocab: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, vocab, (n, seq_len), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def load_for_training(path, method: str, dtype: str = "fp32", lora_rank: int = 16,
                      checkpointing: bool = False):
    """The model at ``path`` ready for ``method``: 'full' (every weight trains), 'lora' (frozen base
    in ``dtype`` + LoRA on every block linear), 'qlora' (NF4 + double quantization base, prepared
    by PEFT's ``prepare_model_for_kbit_training``, + LoRA)."""
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    from labkit.topics.qlora import quantize

    tdtype = parse_dtype(dtype)
    device = {"": 0} if torch.cuda.is_available() else None
    if method == "qlora":
        model = quantize.load(path, "nf4-dq")
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=tdtype, device_map=device)
    if method in ("lora", "qlora"):
        model = add_lora(model, lora_rank)
    materialize(model)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if method != "full":
            model.enable_input_require_grads()
    return model


def materialize(model) -> None:
    """Copy every non-quantized tensor into memory of its own. Loading maps the checkpoint file
    (safetensors mmap): its pages would count only once touched, and keep the whole file mapped."""
    for t in [*model.parameters(), *model.buffers()]:
        if type(t).__name__ not in ("Params4bit", "Int8Params") and t.device.type == "cpu":
            t.data = t.data.clone()


def live_heap() -> None:
    """Make glibc return every large freed block to the OS at once (a fixed mmap threshold), so
    the CPU's resident memory follows the live tensors, as CUDA's allocated-bytes counter does."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _trainer(model, data, batch, steps, optimizer, checkpointing):
    import tempfile

    return trainer(model, None, data, out_dir=tempfile.mkdtemp(prefix="mem-"), steps=steps, batch_size=batch,
                   lr=1e-4, optim={"adamw": "adamw_torch_fused", "adamw8bit": "adamw_bnb_8bit"}[optimizer],
                   gradient_checkpointing=checkpointing, gradient_checkpointing_kwargs={"use_reentrant": False},
                   bf16=False, fp16=False, max_grad_norm=1.0, progress=False)


def _warm_up(method, checkpointing, optimizer, dtype):
    """One step of a tiny model through the same code path: lazy imports, thread pools and kernels
    are set up before the baseline is read, so they do not count as the model's memory."""
    import tempfile

    from transformers import AutoModelForCausalLM, LlamaConfig

    tiny = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2,
                       num_key_value_heads=1, vocab_size=256)
    path = tempfile.mkdtemp(prefix="tiny-")
    AutoModelForCausalLM.from_config(tiny).save_pretrained(path)
    model = load_for_training(path, method, dtype, 4, checkpointing)
    _trainer(model, _RandomTokens(1, 8, 256), 1, 1, optimizer, checkpointing).train()


def measure_training(path, method: str, *, batch: int, seq_len: int, checkpointing: bool = False,
                     optimizer: str = "adamw", dtype: str = "fp32", lora_rank: int = 16, steps: int = 2,
                     threads: int = 1) -> dict:
    """Train the model saved at ``path`` for ``steps`` Trainer steps and measure its memory, in bytes
    above the ``baseline`` of the warmed-up process: ``peak`` (high-water mark while training),
    ``weights`` (after loading and preparing), ``optimizer`` (its state tensors), ``gradients`` (one
    per trainable parameter) and ``activations`` (saved for backward, counted by autograd hooks).
    Run it in a fresh process (``in_fresh_processes``): a high-water mark cannot go down."""
    import time

    torch.set_num_threads(threads)
    live_heap()
    _warm_up(method, checkpointing, optimizer, dtype)
    data = _RandomTokens(batch * steps, seq_len, _vocab(path))
    release_free_memory()
    baseline = current_bytes()
    model = load_for_training(path, method, dtype, lora_rank, checkpointing)
    release_free_memory()
    weights = current_bytes() - baseline
    trainer = _trainer(model, data, batch, steps, optimizer, checkpointing)
    release_free_memory()
    reset_peak()
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    peak = peak_bytes() - baseline
    trainable = [p for p in model.parameters() if p.requires_grad]
    states = [t for st in trainer.optimizer.state.values() for t in st.values() if torch.is_tensor(t)]
    optim = sum(t.untyped_storage().nbytes() for t in {t.untyped_storage().data_ptr(): t for t in states}.values())
    model.train()
    acts = saved_activation_bytes(model, data.ids[:batch])
    return {"peak": peak, "weights": weights, "optimizer": optim,
            "gradients": sum(p.numel() * p.element_size() for p in trainable), "activations": acts,
            "baseline": baseline, "seconds": seconds, "trainable": sum(p.numel() for p in trainable),
            "device": "cuda" if torch.cuda.is_available() else "cpu"}


def _vocab(path) -> int:
    import json
    from pathlib import Path

    return json.loads((Path(path) / "config.json").read_text())["vocab_size"]


# Imported once by the fork server, so each fresh worker starts with them loaded. A name that does not
# import is skipped by multiprocessing without a word, so tests/test_memory_lab.py imports each one.
PRELOAD = ["labkit", "torch", "transformers", "peft", "bitsandbytes", "labkit.topics.qlora.quantize",
           "labkit.engine.memory", "labkit.topics.qlora.memory_lab"]


def in_fresh_processes(fn, configs: list[dict], workers: int = 1) -> list:
    """``fn(**config)`` for each config, each in a new process forked from a server that has already
    imported torch, transformers, PEFT and bitsandbytes (fresh memory, no import wait); the results in
    the order of ``configs``. Whatever ``fn`` allocates goes when its process ends, so the caller (a
    notebook's kernel) never holds it. ``fn`` must be importable by name: a labkit function, not one
    defined in a notebook. The fork server is stopped afterwards."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from labkit.engine.callbacks import progress

    ctx = mp.get_context(start_method())
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    results = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = [pool.submit(_fresh, fn, c) for c in configs]
        results = [f.result() for f in progress(futures, f"{len(configs)} fresh processes")]
    stop_fork_server()
    return results


def start_method() -> str:
    """How the measuring processes start: forked from a server that preloaded the libraries, except on a
    CUDA machine, where importing bitsandbytes initialises CUDA in that server and a forked child cannot
    use the GPU ("Cannot re-initialize CUDA in forked subprocess", seen on an H200): there each starts
    fresh ("spawn"), paying the imports itself."""
    import torch

    return "spawn" if torch.cuda.is_available() else "forkserver"


def stop_fork_server() -> None:
    """End the fork server: it would otherwise live as long as the kernel, holding the ~0.4 GiB of
    imports it preloaded (on a 2 GB Binder, a fifth of the machine). ``_stop`` is private to
    multiprocessing (its tests use it), so this does nothing where it is missing; the next
    ``in_fresh_processes`` starts a new server."""
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)
    if stop is not None:
        stop()


def _fresh(fn, config: dict):
    """``fn(**config)`` in a fresh worker. The server's preloaded objects are frozen out of the garbage
    collector first (``gc.freeze``): a collection writes into every object it visits, which would copy
    each page the worker shares with the server (measured: ~0.1 GiB more per worker). glibc returns
    freed blocks at once (``live_heap``), so one model's memory is not kept for the next; and the
    warnings and logs a notebook's kernel has hidden stay hidden."""
    import gc
    import logging
    import warnings

    gc.freeze()
    live_heap()
    warnings.filterwarnings("ignore")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return fn(**config)

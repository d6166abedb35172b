"""Training peaks measured one configuration per fresh process, and notebook 04's sizes per profile.
Introduced in notebook 04_qlora_memory.
"""

from __future__ import annotations

import torch

from labkit.engine.memory import current_bytes, peak_bytes, release_free_memory, reset_peak
from labkit.engine.peft_config import add_lora
from labkit.engine.train import trainer


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

    tdtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
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


def saved_activation_bytes(model, input_ids) -> int:
    """Bytes of the tensors autograd saves for backward in one forward pass (parameters excluded,
    shared storage counted once): the activations, counted rather than estimated."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=input_ids, labels=input_ids)
    return sum(seen.values())


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
    Run it in a fresh process (``measure_in_fresh_process``): a high-water mark cannot go down."""
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
    acts = saved_activation_bytes(model, data.ids[:batch].to(model.device))
    return {"peak": peak, "weights": weights, "optimizer": optim,
            "gradients": sum(p.numel() * p.element_size() for p in trainable), "activations": acts,
            "baseline": baseline, "seconds": seconds, "trainable": sum(p.numel() for p in trainable),
            "device": "cuda" if torch.cuda.is_available() else "cpu"}


def _vocab(path) -> int:
    import json
    from pathlib import Path

    return json.loads((Path(path) / "config.json").read_text())["vocab_size"]


PRELOAD = ["labkit", "torch", "transformers", "peft", "bitsandbytes", "labkit.quantize", "labkit.memory"]


def measure_in_fresh_process(configs: list[dict], workers: int = 2) -> list[dict]:
    """``measure_training(**config)`` for each config, each in a new process forked from a server
    that has already imported torch, transformers, PEFT and bitsandbytes (fresh memory, no import wait)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    results = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = [pool.submit(_measure, c) for c in configs]
        results = [f.result() for f in futures]
    return results


def _measure(config: dict) -> dict:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return measure_training(**config)

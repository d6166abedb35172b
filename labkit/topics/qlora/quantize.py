"""Quantized loading: one model in fp32, bf16, int8, NF4, FP4 or NF4 with double quantization
(transformers' ``BitsAndBytesConfig``), and the bits each parameter really costs.

NF4 with blocksize 64 keeps one fp32 absmax per 64 weights: 4 + 32/64 = 4.5 bits. Double
quantization stores those absmaxes in 8 bits with one fp32 constant per 256 of them:
4 + 8/64 + 32/(64*256) = 4.127 bits (QLoRA, section 3). Introduced in notebook 04_qlora_memory.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from labkit.model.loading import half_precision

FORMATS = ("fp32", "bf16", "int8", "nf4", "fp4", "nf4-dq")
THEORY_BITS = {"fp32": 32.0, "bf16": 16.0, "int8": 8.0 + 32 / 4096,  # int8: one fp32 scale per row
               "nf4": 4 + 32 / 64, "fp4": 4 + 32 / 64, "nf4-dq": 4 + 8 / 64 + 32 / (64 * 256)}


class QuantizationUnavailable(RuntimeError):
    """No bitsandbytes backend can do the asked quantization here; the message says what to do."""


def compute_dtype() -> torch.dtype:
    """The dtype 4-bit layers compute in: the machine's half precision (bf16 on a GPU that has it, fp16
    on a T4, whose bf16 is only emulated), fp32 on the CPU. transformers' default is fp32 even on a GPU:
    slow, and silent about it."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16, None: torch.float32}[half_precision()]


def check_backend(fmt: str, device: str | None = None) -> None:
    """Raise ``QuantizationUnavailable`` (one sentence) unless bitsandbytes can quantize to ``fmt``
    on ``device``: a tiny quantization is tried, so a missing kernel shows up here, not deep inside."""
    if fmt in ("fp32", "bf16"):
        return
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        import bitsandbytes.functional as bnbf

        probe = torch.randn(256, device=device, dtype=torch.float32)
        if fmt == "int8":
            bnbf.int8_vectorwise_quant(probe.view(4, 64).to(torch.float16))
        else:
            bnbf.quantize_4bit(probe, quant_type="fp4" if fmt == "fp4" else "nf4", blocksize=64,
                               compress_statistics=fmt == "nf4-dq")
    except ImportError:
        raise QuantizationUnavailable(
            f"{fmt} needs bitsandbytes, which is not installed: run `pip install 'bitsandbytes>=0.50'` "
            "(or use fp32/bf16).") from None
    except Exception as err:  # noqa: BLE001 - any failure of the probe means: no backend here
        fix = ("install bitsandbytes>=0.50 (CPU 4-bit needs AVX2) or run on a CUDA GPU" if device == "cpu" else
               "install a bitsandbytes>=0.50 built for this machine's CUDA (`pip install -U bitsandbytes`)")
        raise QuantizationUnavailable(
            f"bitsandbytes has no {fmt} kernel for the {device} here ({type(err).__name__}): {fix}, "
            "or use fp32/bf16.") from None


def quantization_config(fmt: str):
    """transformers' ``BitsAndBytesConfig`` for ``fmt`` (None for fp32/bf16). NF4 is asked by name:
    bitsandbytes' own ``quantize_4bit`` defaults to FP4."""
    from transformers import BitsAndBytesConfig

    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}.")
    if fmt in ("fp32", "bf16"):
        return None
    if fmt == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="fp4" if fmt == "fp4" else "nf4",
                              bnb_4bit_use_double_quant=fmt == "nf4-dq", bnb_4bit_compute_dtype=compute_dtype())


def load(path, fmt: str, **kwargs):
    """Load the model saved at ``path`` in format ``fmt`` (see ``FORMATS``)."""
    from transformers import AutoModelForCausalLM

    check_backend(fmt)
    q = quantization_config(fmt)
    dtype = torch.bfloat16 if fmt == "bf16" else (compute_dtype() if q is not None else torch.float32)
    if q is not None and torch.cuda.is_available():
        kwargs.setdefault("device_map", {"": 0})
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=q, dtype=dtype, **kwargs)
    return avoid_cpu_repacking(model)


def avoid_cpu_repacking(model):
    """Keep every 4-bit layer on bitsandbytes' generic CPU path. bitsandbytes 0.50 repacks a 4-bit
    weight for its AVX512-BF16 kernel the first time the layer runs in eval mode without gradients
    (the Trainer's evaluation does that), and the repacked layer then computes through an op with no
    autograd formula even in training (PyTorch warns "gemv_4bit: an autograd kernel was not
    registered"): gradients would stop flowing through the base. The repacking also fails outright on
    widths that are not multiples of 32/64, like the course model's 682-wide MLP."""
    import bitsandbytes as bnb

    for mod in model.modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            mod.support_avx512bf16_for_cpu = False
    return model


def _tensor_bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def _quant_state_tensors(weight):
    """Every tensor a quantized weight needs besides its packed data (absmax, codebooks, offsets)."""
    out = []
    qs = getattr(weight, "quant_state", None)  # 4-bit
    while qs is not None:
        out += [v for v in vars(qs).values() if torch.is_tensor(v)]
        qs = getattr(qs, "state2", None)
    scb = getattr(weight, "SCB", None)  # 8-bit: one scale per row
    if scb is not None:
        out.append(scb)
    return out


def footprint(model) -> dict:
    """Bytes of ``model`` by kind, counted from the tensors it holds (shared storage once):
    ``quantized`` linear layers (their packed weights and quantization constants) and
    ``unquantized`` parameters (embeddings, norms, an untied lm_head), with the parameter counts
    and the bits per parameter of the quantized linear weights."""
    import bitsandbytes as bnb

    qbytes = qparams = 0
    qnames = set()
    for name, mod in model.named_modules():
        if isinstance(mod, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)):
            w = mod.weight
            qbytes += _tensor_bytes([w, *_quant_state_tensors(w)])
            qparams += mod.in_features * mod.out_features
            qnames.add(f"{name}.weight")
    rest = [p for n, p in model.named_parameters() if n not in qnames]
    by_dtype = defaultdict(int)
    for n, p in model.named_parameters():
        if n not in qnames:
            by_dtype[str(p.dtype).replace("torch.", "")] += p.numel()
    rest_bytes = _tensor_bytes(rest) + _tensor_bytes(list(model.buffers()))
    return {"quantized_bytes": qbytes, "quantized_params": qparams,
            "bits_per_param": 8 * qbytes / qparams if qparams else None,
            "unquantized_bytes": rest_bytes, "unquantized_params": sum(by_dtype.values()),
            "unquantized_dtypes": dict(by_dtype), "total_bytes": qbytes + rest_bytes}


def linear_bits(model) -> float:
    """Bits per parameter of all linear layers in the decoder blocks, quantized or not."""
    fp = footprint(model)
    if fp["bits_per_param"] is not None:
        return fp["bits_per_param"]
    lin = [m.weight for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".layers." in n]
    return 8 * _tensor_bytes(lin) / sum(w.numel() for w in lin)


def weigh(arch, path, formats=FORMATS) -> dict:
    """A ladder rung, weighed: a model of architecture ``arch`` (``lk.architectures``) saved at ``path``
    with random weights (memory does not care what they say), then loaded in each of ``formats``
    (``load``) and counted. Per format: its ``footprint`` and the bits per block-linear parameter
    (``linear_bits``). Each model is freed before the next loads; run it in a fresh process
    (``memory_lab.in_fresh_processes``) and the caller never holds any of them."""
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_config(arch.llama_config()).save_pretrained(path)
    out = {}
    for fmt in formats:
        model = load(path, fmt)
        out[fmt] = {"footprint": footprint(model), "bits": linear_bits(model)}
        del model
    return out

"""An analytic estimate of fine-tuning memory: weights + gradients + optimizer states + activations
(+ the largest transient buffer), from an architecture's shapes, the method and the batch.

Every term is counted from the shapes, not fitted to a measurement:
- weights: full/LoRA keep the base in its dtype; QLoRA stores block linears in NF4 (4.5 bits, 4.127
  with double quantization) and everything else in fp32 (``prepare_model_for_kbit_training``
  upcasts embeddings, norms and lm_head); LoRA matrices are fp32.
- gradients: one per trainable parameter, in its dtype.
- optimizer: AdamW keeps two moments (8 B/param in fp32, +4 B fp32 master weights under mixed
  precision: ZeRO's 16 B/param); bitsandbytes' 8-bit AdamW 2 B/param + block constants
  (tensors under 4096 elements stay 32-bit).
- activations: what autograd saves per token and layer for a Llama block (norms, q/k/v, attention
  output and log-sum-exp, the four MLP tensors, the LoRA bottlenecks), plus the log-softmax of the
  logits; with gradient checkpointing only each block's input, plus one block recomputed.
- workspace: short-lived buffers (the loss's fp32 gradients of the logits, a 4-bit weight
  dequantized for its matmul, a tied embedding's second gradient, the 8-bit optimizer's CPU
  temporaries).
The peak is taken at the larger of two moments, not as the sum of every part: the start of
backward (activations, no gradients yet) and the end of backward / the update (all gradients,
activations freed).
Introduced in notebook 04_qlora_memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.core.architectures import ARCHITECTURES, Architecture, get_architecture
from labkit.core.units import GiB, gib

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
METHODS = ("full", "lora", "qlora")
OPTIMIZERS = ("adamw", "adamw8bit")
PARTS = ("weights", "gradients", "optimizer", "activations", "workspace")


@dataclass(frozen=True)
class Setup:
    method: str = "qlora"        # full | lora | qlora
    batch: int = 1               # sequences per step
    seq_len: int = 512           # tokens per sequence
    checkpointing: bool = True   # gradient checkpointing: keep block inputs only, recompute
    optimizer: str = "adamw"     # adamw | adamw8bit (bitsandbytes)
    dtype: str = "bf16"          # base weights (full/LoRA) and compute/activations: fp32 | bf16 | fp16
    mixed_precision: bool = False  # full only: 16-bit weights with fp32 master copy (ZeRO: 16 B/param)
    lora_rank: int = 16          # LoRA rank r on every linear layer of the blocks
    double_quant: bool = True    # QLoRA: quantize the NF4 absmax constants too
    device: str = "cuda"         # cuda | cpu: where the optimizer's step temporaries differ


def _check(arch: Architecture, s: Setup) -> None:
    if s.method not in METHODS:
        raise ValueError(f"Unknown method {s.method!r}: use one of {', '.join(METHODS)}.")
    if s.optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {s.optimizer!r}: use one of {', '.join(OPTIMIZERS)}.")
    if s.dtype not in BYTES:
        raise ValueError(f"Unknown dtype {s.dtype!r}: use one of {', '.join(BYTES)}.")
    if s.batch < 1 or s.seq_len < 1 or s.lora_rank < 1:
        raise ValueError("batch, seq_len and lora_rank must be positive integers.")


def tensors(arch: Architecture, s: Setup) -> list[tuple[str, int, bool]]:
    """Every parameter tensor as (kind, elements, trainable): 'linear' (block linears), 'embed',
    'lm_head', 'norm', 'lora'."""
    h, L = arch.hidden_size, arch.num_hidden_layers
    full = s.method == "full"
    out = [("embed", arch.vocab_size * h, full)]
    if not arch.tie_word_embeddings:
        out.append(("lm_head", arch.vocab_size * h, full))
    for _ in range(L):
        for o, i in arch.linear_shapes().values():
            out.append(("linear", o * i, full))
            if not full:
                out += [("lora", s.lora_rank * i, True), ("lora", o * s.lora_rank, True)]
        out += [("norm", h, full), ("norm", h, full)]
    out.append(("norm", h, full))
    return out


def quant_bits(double_quant: bool = True, blocksize: int = 64) -> float:
    """Bits per parameter of NF4: 4 + an fp32 absmax per block, or an 8-bit one (+ fp32 per 256)."""
    return 4 + (8 / blocksize + 32 / (blocksize * 256) if double_quant else 32 / blocksize)


def _adam8_bytes(n: int) -> float:
    return 2 * n + 2 * 4 * -(-n // 256) if n >= 4096 else 8 * n


def _step_workspace(ts, s: Setup) -> float:
    """Temporaries of one optimizer step. AdamW is the Trainer's default fused kernel (no
    temporaries), as is bitsandbytes' 8-bit kernel on CUDA; bitsandbytes' CPU path computes in
    fp32 PyTorch ops: three temporaries of a 32-bit-state tensor, five of an 8-bit one."""
    if s.optimizer == "adamw" or s.device == "cuda":
        return 0.0
    trainable = [(kind, n) for kind, n, t in ts if t]
    n32 = [n for kind, n in trainable if kind == "embed" or n < 4096]
    n8 = [n for kind, n in trainable if not (kind == "embed" or n < 4096)]
    return 4.0 * max(3 * max(n32, default=0), 5 * max(n8, default=0))


def activation_bytes_per_token(arch: Architecture, s: Setup) -> dict:
    """Bytes autograd keeps per token: ``block`` (one decoder layer, all it saves), ``ckpt_block``
    (one layer under checkpointing: its input) and ``head`` (final norm and log-softmax, less the
    first block's input where nothing below it trains)."""
    a = BYTES[s.dtype]
    h, i, heads = arch.hidden_size, arch.intermediate_size, arch.num_attention_heads
    kv = arch.num_key_value_heads * arch.head_dim
    norm = 3 * h if s.method == "full" else 2 * h  # x, (x*rsqrt if the norm weight trains), output
    lora = 7 * s.lora_rank if s.method != "full" else 0  # each lora_A's output, saved by lora_B
    block = a * (2 * norm + h + 2 * kv + h + 4 * i + lora) + 4 * (heads + 2)  # + lse, rsqrt (fp32)
    # final norm (its output is kept only if lm_head trains); log-softmax of the logits in fp32
    head = a * (norm if s.method == "full" else h) + 4 * arch.vocab_size
    # With a frozen embedding the first block's input needs no gradient, so it is not kept
    # (unless checkpointing, which makes the input require grad to recompute through it).
    first = -a * h if s.method != "full" and not s.checkpointing else 0
    return {"block": block, "ckpt_block": a * h, "head": head + first}


def estimate(arch: Architecture | str, setup: Setup | None = None, **changes) -> dict:
    """Bytes by part (``PARTS``) and ``total`` for fine-tuning ``arch`` as ``setup`` says.
    Keyword arguments change fields of the setup: ``estimate('LLaMA-65B', method='full')``."""
    from dataclasses import replace

    arch = get_architecture(arch) if isinstance(arch, str) else arch
    s = replace(setup or Setup(), **changes)
    _check(arch, s)
    wb = BYTES[s.dtype]
    ts = tensors(arch, s)
    weights = grads = optim = 0.0
    for kind, n, trainable in ts:
        if kind == "lora":
            size = 4  # PEFT keeps adapters in fp32
        elif s.method == "qlora":
            size = quant_bits(s.double_quant) / 8 if kind == "linear" else 4
        else:
            size = wb
        weights += n * size
        if trainable:
            grads += n * size
            if s.optimizer == "adamw8bit":  # the Trainer keeps embeddings' states in 32 bits
                optim += 8 * n if kind == "embed" else _adam8_bytes(n)
            else:
                optim += n * (12 if s.mixed_precision and size < 4 else 2 * size)  # fp32 master + 2 moments
    tokens = s.batch * s.seq_len
    act = activation_bytes_per_token(arch, s)
    L = arch.num_hidden_layers
    if s.checkpointing:  # block inputs kept; one block recomputed at a time during backward
        activations = tokens * (L * act["ckpt_block"] + act["block"] + act["head"])
    else:
        activations = tokens * (L * act["block"] + act["head"])
    step_ws = _step_workspace(ts, s)
    if s.method == "full" and arch.tie_word_embeddings:  # the embedding's gradient, before it is added
        step_ws += arch.vocab_size * arch.hidden_size * wb  # to the lm_head's (same tensor, tied)
    pass_ws = tokens * arch.vocab_size * 8  # the loss's fp32 gradients of log-softmax and logits
    if s.method == "qlora":  # the largest 4-bit weight dequantized for its matmul
        pass_ws += max(o * i for o, i in arch.linear_shapes().values()) * BYTES[s.dtype]
    # Two moments hold the peak: backward's start (activations saved, no gradient yet: the
    # Trainer zeroes them to None) and the update (every gradient, no activation).
    backward, update = activations + pass_ws, grads + step_ws
    phase = "backward" if backward >= update else "update"
    parts = {"weights": weights, "gradients": grads, "optimizer": optim, "activations": activations,
             "workspace": pass_ws if phase == "backward" else step_ws}
    total = weights + optim + max(backward, update)
    return {**{k: float(v) for k, v in parts.items()}, "total": float(total), "phase": phase,
            "sum_of_parts": float(weights + optim + grads + activations + max(pass_ws, step_ws)),
            "trainable_params": sum(n for _, n, t in ts if t), "params": arch.parameter_count()}


def at_peak(est: dict) -> dict:
    """The parts present at the estimated peak (gradients or activations, not both): sums to total."""
    gone = "gradients" if est["phase"] == "backward" else "activations"
    return {k: (0.0 if k == gone else est[k]) for k in PARTS}


# Common cards by the name they are sold under, and their memory in GiB: a GPU's "16 GB" is 16 GiB
# (2**30 bytes each; see labkit.core.units), not 16e9 bytes.
CARDS = {"T4 16 GB": 16, "A10 24 GB": 24, "A100 40 GB": 40, "A6000 48 GB": 48, "A100 80 GB": 80,
         "H100 80 GB": 80}


def a_card(card: str) -> str:
    """The card's name with its article, as it is read aloud: "a T4 16 GB", "an A6000 48 GB", "an H100 80 GB"."""
    return f"{'an' if card[:1].upper() in 'AEFHILMNORSX' else 'a'} {card}"


def verdict(total_bytes: float, card: str, headroom: float = 0.9) -> dict:
    """Does ``total_bytes`` fit ``card``? Only ``headroom`` of the card counts as usable (the CUDA
    context, the allocator's fragmentation and the framework take the rest)."""
    if card not in CARDS:
        raise ValueError(f"Unknown card {card!r}: use one of {', '.join(CARDS)}.")
    usable = CARDS[card] * GiB * headroom
    fits = total_bytes <= usable
    text = (f"{'fits' if fits else 'does not fit'}: {gib(total_bytes):.1f} GiB needed, "
            f"{gib(usable):.1f} GiB usable on {a_card(card)}")
    return {"fits": fits, "needed_gib": gib(total_bytes), "usable_gib": gib(usable), "text": text}


def cards_table(names, setups: dict[str, Setup], cards=None) -> list[dict]:
    """One row per (architecture, method): the estimate in GiB and whether it fits each card."""
    rows = []
    for name in names:
        for label, setup in setups.items():
            est = estimate(name, setup)
            row = {"model": name, "method": label, "total_gib": gib(est["total"])}
            for card in cards or CARDS:
                row[card] = verdict(est["total"], card)["fits"]
            rows.append(row)
    return rows


def calculator(model: str = "Llama-2-7B", method: str = "qlora", batch: int = 1, seq_len: int = 512,
               checkpointing: bool = True, card: str = "T4 16 GB", optimizer: str = "adamw",
               dtype: str = "bf16", lora_rank: int = 16) -> dict:
    """The memory calculator's pure function: the parts present at the peak moment in GiB (they sum
    to the total), which moment that is, the total and the verdict for ``card``. ``model`` is a
    named architecture or a size in billions of parameters ("7" or 7.0)."""
    arch = architecture_for(model)
    est = estimate(arch, Setup(method=method, batch=batch, seq_len=seq_len, checkpointing=checkpointing,
                               optimizer=optimizer, dtype=dtype, mixed_precision=method == "full",
                               lora_rank=lora_rank))
    return {"model": arch.name, "parts_gib": {k: gib(v) for k, v in at_peak(est).items()}, "phase": est["phase"],
            "total_gib": gib(est["total"]), "params": est["params"], "verdict": verdict(est["total"], card)}


def architecture_for(model) -> Architecture:
    """A named architecture, or for a number of billions the named Llama-class config nearest in size."""
    if isinstance(model, str) and model in ARCHITECTURES:
        return ARCHITECTURES[model]
    try:
        billions = float(model)
    except (TypeError, ValueError):
        raise ValueError(f"Unknown model {model!r}: give a name ({', '.join(ARCHITECTURES)}) "
                         "or a size in billions of parameters.") from None
    if billions <= 0:
        raise ValueError("A model size must be a positive number of billions of parameters.")
    import math

    return min(ARCHITECTURES.values(), key=lambda a: abs(math.log(a.parameter_count() / (billions * 1e9))))


def accelerate_estimate(arch: Architecture | str) -> dict:
    """What ``accelerate estimate-memory`` reports for ``arch`` in fp32: the model's size (loading)
    and its "training using Adam" column, which is the largest of model, gradients, optimizer and
    step, not their sum, with no activations (computed with accelerate's own functions)."""
    from accelerate import init_empty_weights
    from accelerate.commands.estimate import estimate_training_usage
    from accelerate.utils import calculate_maximum_sizes
    from transformers import AutoModelForCausalLM

    arch = get_architecture(arch) if isinstance(arch, str) else arch
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(arch.llama_config())
    total, _ = calculate_maximum_sizes(model)
    fp32, bf16 = estimate_training_usage(total, "float32"), estimate_training_usage(total, "bfloat16")
    return {"load_bytes": float(total), "training_fp32_bytes": float(max(fp32.values())),
            "training_bf16_bytes": float(max(bf16.values())), "parts_bf16": {k: float(v) for k, v in bf16.items()}}

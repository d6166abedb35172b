"""Memory, measured: peaks (CUDA counters or the process high-water mark), memory in use, and the
accounting of full fine-tuning (weights, gradients, optimizer states). Sizes are bytes; shown in GiB
(labkit.core.units). Used by the training callbacks. Introduced in notebook 01_full_finetuning.
"""

from __future__ import annotations

import sys
import threading
import time

import torch


def current_bytes() -> int:
    """Memory in use now (CUDA allocated, or RSS)."""
    if torch.cuda.is_available():
        return torch.cuda.memory_allocated()
    import psutil

    return psutil.Process().memory_info().rss


class _RssSampler(threading.Thread):
    """Samples the process's RSS every few milliseconds and keeps the largest value seen: the peak
    where the kernel's high-water mark cannot be reset (macOS, some sandboxes). Spikes shorter than
    the interval can be missed."""

    def __init__(self, interval_s: float = 0.002):
        super().__init__(daemon=True, name="labkit-rss-sampler")
        import psutil

        self.interval_s = interval_s
        self.process = psutil.Process()
        self.lock = threading.Lock()  # a reset must not be overwritten by a sample read before it
        self.peak = self.process.memory_info().rss

    def run(self) -> None:
        while True:
            with self.lock:
                self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval_s)

    def reset(self) -> None:
        with self.lock:
            self.peak = self.process.memory_info().rss


_sampler: _RssSampler | None = None


def _read_status(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status, in bytes (None off Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _clear_high_water_mark() -> bool:
    """Reset the kernel's RSS high-water mark; True only if it took effect (HWM back near RSS)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    hwm, rss = _read_status("VmHWM"), _read_status("VmRSS")
    return hwm is not None and rss is not None and hwm <= rss + 8 * 2**20


def reset_peak() -> None:
    """Start a new peak: CUDA's counter; on the CPU the kernel's RSS high-water mark (Linux), or,
    where that cannot be reset, a background sampler of RSS."""
    global _sampler
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return
    if _sampler is None and _clear_high_water_mark():
        return
    if _sampler is None:
        _sampler = _RssSampler()
        _sampler.start()
    _sampler.reset()


def peak_bytes() -> int:
    """Peak since ``reset_peak``: CUDA bytes allocated on a GPU, else the process's peak RSS."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated()
    if _sampler is not None:
        return max(_sampler.peak, current_bytes())
    hwm = _read_status("VmHWM")
    if hwm is not None:
        return hwm
    try:
        import resource  # Unix only
    except ImportError:  # Windows: the working set's peak
        import psutil

        return getattr(psutil.Process().memory_info(), "peak_wset", current_bytes())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def full_finetuning_bytes(model, optimizer: str = "adamw") -> dict:
    """Bytes for full fine-tuning of ``model`` as it is stored: weights, one gradient per
    trainable weight, and AdamW's two moment tensors (kept in the weights' dtype here)."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    grads = sum(p.numel() * p.element_size() for p in trainable)
    states = {"adamw": 2, "sgd": 0, "sgd_momentum": 1}[optimizer]
    optim = states * grads
    return {"weights": weights, "gradients": grads, "optimizer": optim,
            "total": weights + grads + optim}


def local_bytes(tensor) -> int:
    """Bytes of ``tensor`` this process holds: a sharded tensor (FSDP's DTensor) counts its local shard."""
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    return local.numel() * local.element_size()


def held_bytes(model, optimizer) -> dict:
    """What training really holds, read from PyTorch's tensors: the weights (tied ones once), every
    gradient present, and every per-parameter optimizer state tensor (AdamW's exp_avg and exp_avg_sq;
    the 0-d step counters are left out). Sharded tensors count this process's shard; PyTorch's
    ``ZeroRedundancyOptimizer`` keeps only its shard's states (in ``.optim``)."""
    params = list({id(p): p for p in model.parameters()}.values())
    state = getattr(optimizer, "optim", optimizer).state
    return {"weights": sum(local_bytes(p) for p in params),
            "gradients": sum(local_bytes(p.grad) for p in params if p.grad is not None),
            "optimizer": sum(local_bytes(t) for s in state.values() for t in s.values()
                             if torch.is_tensor(t) and t.dim() > 0)}


def release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so RSS is what is live."""
    import ctypes
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
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
        # Detached: a saved tensor that is its own node's output would otherwise point back at that node
        # (tensor -> grad_fn -> saved tensor), a cycle Python's collector cannot see: ~50 MB leaked per call.
        return t.detach()

    input_ids = input_ids.to(next(model.parameters()).device)  # a Trainer may have moved the model to the GPU
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=input_ids, labels=input_ids)
    return sum(seen.values())

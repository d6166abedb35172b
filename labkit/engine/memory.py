"""Memory, measured: peaks (CUDA counters or the process high-water mark), memory in use, and the
accounting of full fine-tuning (weights, gradients, optimizer states). Sizes are bytes; shown in GiB
(labkit.core.units). Used by the training callbacks. Introduced in notebook 01_full_finetuning.
"""

from __future__ import annotations

import resource
import sys

import torch


def reset_peak() -> None:
    """Start a new peak: CUDA's counter, or the process RSS high-water mark (Linux)."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # not Linux: the lifetime maximum is what can be read


def peak_bytes() -> int:
    """Peak since ``reset_peak``: CUDA bytes allocated on a GPU, else the process's peak RSS."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated()
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def current_bytes() -> int:
    """Memory in use now (CUDA allocated, or RSS)."""
    if torch.cuda.is_available():
        return torch.cuda.memory_allocated()
    import psutil

    return psutil.Process().memory_info().rss


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

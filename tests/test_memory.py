import time

import pytest
import torch

from labkit import memory


@pytest.fixture
def cpu_memory(monkeypatch):
    """Measure the process's memory (RSS), as on a machine without a GPU: where CUDA is available
    ``reset_peak``/``peak_bytes`` read CUDA's counters instead, which a CPU tensor never moves."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_full_finetuning_bill_is_16_bytes_per_fp32_param():
    model = torch.nn.Linear(10, 10)
    bill = memory.full_finetuning_bytes(model)
    assert bill["total"] == 16 * 110 and bill["optimizer"] == 8 * 110


def _peak_of_a_freed_block(device: str = "cpu") -> tuple[int, int]:
    """Reset, allocate and touch 64 MiB on ``device``, free it: (peak after reset, peak after the block)."""
    memory.release_free_memory()
    memory.reset_peak()
    before = memory.peak_bytes()
    block = torch.ones(64 * 2**20 // 4, device=device)
    time.sleep(0.05)  # the sampler's interval is milliseconds
    del block
    memory.release_free_memory()
    return before, memory.peak_bytes()


def test_peak_sees_a_freed_allocation(cpu_memory):
    before, after = _peak_of_a_freed_block()
    assert after >= before + 48 * 2**20


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_peak_sees_a_freed_allocation():
    """With a GPU the peak is CUDA's allocated-bytes high-water mark."""
    before, after = _peak_of_a_freed_block("cuda")
    assert after >= before + 48 * 2**20
    memory.reset_peak()
    assert memory.peak_bytes() < memory.current_bytes() + 32 * 2**20


def test_peak_sees_a_freed_allocation_where_the_high_water_mark_cannot_be_reset(monkeypatch, cpu_memory):
    monkeypatch.setattr(memory, "_clear_high_water_mark", lambda: False)
    monkeypatch.setattr(memory, "_sampler", None)
    before, after = _peak_of_a_freed_block()
    assert memory._sampler is not None and after >= before + 48 * 2**20


def test_a_reset_forgets_an_earlier_peak(cpu_memory):
    block = torch.ones(64 * 2**20 // 4)
    del block
    memory.release_free_memory()
    memory.reset_peak()
    assert memory.peak_bytes() < memory.current_bytes() + 32 * 2**20


def test_counting_activations_frees_them_afterwards(tiny):
    """The counting hook must not keep the forward pass alive (a saved tensor returned as it is forms
    a cycle through its grad_fn that Python cannot collect: the graph leaked on every call)."""
    import weakref

    from labkit.engine import memory

    model, tok = tiny
    model.train()
    alive = []
    hook = model.model.layers[-1].register_forward_hook(
        lambda module, args, out: alive.append(weakref.ref(out[0] if isinstance(out, tuple) else out)))
    ids = tok(["record of Ze Da :"], return_tensors="pt").input_ids
    assert memory.saved_activation_bytes(model, ids) > 0
    hook.remove()
    assert alive and all(ref() is None for ref in alive)


def test_peak_reads_without_the_unix_only_resource_module(monkeypatch, cpu_memory):
    """On Windows there is no `resource` and no /proc: the peak falls back to psutil."""
    import sys

    import psutil  # noqa: F401  (loaded first: psutil's Linux backend itself imports resource)

    from labkit.engine import memory as M

    monkeypatch.setattr(M, "_sampler", None)
    monkeypatch.setattr(M, "_read_status", lambda field: None)
    monkeypatch.setitem(sys.modules, "resource", None)
    assert M.peak_bytes() > 0

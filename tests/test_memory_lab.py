"""Notebook 04's findings (labkit.memory_lab) on fake measured rows: no model, no process."""

import pytest

from labkit import estimate, memory_lab
from labkit.core.units import GiB, MiB


def _row(label, peak, total):
    return {"label": label, "measured": {"peak": peak}, "estimate": {"total": total}}


def test_peak_errors_per_configuration_and_overall():
    rows = [_row("full", 200 * MiB, 180 * MiB), _row("lora", 100 * MiB, 110 * MiB), _row("qlora", 50 * MiB, 50 * MiB)]
    p = memory_lab.peak_errors(rows)
    assert p["by_config"]["full"] == pytest.approx({"measured_mib": 200, "estimated_mib": 180, "error": -0.1,
                                                    "missed_mib": 20})
    assert p["by_config"]["lora"]["error"] == pytest.approx(0.1) and p["by_config"]["lora"]["missed_mib"] == -10
    assert p["by_config"]["qlora"]["error"] == 0
    assert p["max_abs_error"] == pytest.approx(0.1) and p["mean_abs_error"] == pytest.approx(0.2 / 3)
    assert p["worst"] in ("full", "lora")


def test_peak_errors_show_an_estimate_that_is_far_off():
    p = memory_lab.peak_errors([_row("full", 100 * MiB, 60 * MiB), _row("lora", 100 * MiB, 101 * MiB)])
    assert p["max_abs_error"] == pytest.approx(0.4) and p["worst"] == "full"


def test_peak_errors_refuse_a_failed_measurement():
    with pytest.raises(ValueError, match="'lora' measured a peak of 0 bytes"):
        memory_lab.peak_errors([_row("full", 100, 90), _row("lora", 0, 90)])
    with pytest.raises(ValueError, match="No configuration"):
        memory_lab.peak_errors([])


def _measured(weights_lora=64, weights_qlora=16, opt32=128, opt8=32, act=40, act_ckpt=10, peak_full=300, peak_q=60):
    base = {"weights": 64 * MiB, "optimizer": 4 * MiB, "activations": act * MiB, "peak": 100 * MiB}
    return {"full": {**base, "optimizer": opt32 * MiB, "peak": peak_full * MiB},
            "full +8bit opt": {**base, "optimizer": opt8 * MiB},
            "lora": {**base, "weights": weights_lora * MiB},
            "lora +ckpt": {**base, "activations": act_ckpt * MiB},
            "qlora": {**base, "weights": weights_qlora * MiB},
            "qlora +ckpt": {**base, "weights": weights_qlora * MiB, "peak": peak_q * MiB}}


def test_memory_factors():
    f = memory_lab.memory_factors(_measured(), base_bits=32, quant_bits=4.127)
    assert f["weights_lora_mib"] == 64 and f["weights_qlora_mib"] == 16 and f["weights_factor"] == 4
    assert f["weights_factor_all_quantized"] == pytest.approx(7.754, abs=1e-3)
    assert f["optimizer_factor"] == 4 and f["optimizer_8bit_mib"] == 32
    assert f["activations_factor"] == 4 and f["activations_lora_ckpt_mib"] == 10
    assert f["peak_factor"] == 5 and f["peak_full_mib"] == 300 and f["peak_qlora_ckpt_mib"] == 60


def test_memory_factors_show_a_trick_that_saved_nothing():
    f = memory_lab.memory_factors(_measured(weights_qlora=64, opt8=128), base_bits=16, quant_bits=4.127)
    assert f["weights_factor"] == 1 and f["optimizer_factor"] == 1
    assert f["weights_factor_all_quantized"] == pytest.approx(16 / 4.127)


def test_memory_factors_name_what_is_missing():
    m = _measured()
    del m["lora +ckpt"]
    with pytest.raises(ValueError, match="missing lora \\+ckpt"):
        memory_lab.memory_factors(m, 32, 4.127)
    m = _measured(opt8=0)
    with pytest.raises(ValueError, match="'full \\+8bit opt' measured 0 bytes of optimizer"):
        memory_lab.memory_factors(m, 32, 4.127)


def test_four_bit_gap_is_lora_minus_qlora():
    g = memory_lab.four_bit_gap({"field_accuracy": 0.9, "record_exact": 0.8},
                                {"field_accuracy": 0.85, "record_exact": 0.9})
    assert g["field_accuracy_gap"] == pytest.approx(0.05) and g["record_exact_gap"] == pytest.approx(-0.1)
    assert g["lora_field_accuracy"] == 0.9 and g["qlora_field_accuracy"] == 0.85
    worse = memory_lab.four_bit_gap({"field_accuracy": 1.0, "record_exact": 1.0},
                                    {"field_accuracy": 0.5, "record_exact": 0.2})
    assert worse["field_accuracy_gap"] == pytest.approx(0.5)


def test_projection_verdicts_in_gib():
    p = memory_lab.projection({"QLoRA": {"total": 40 * GiB, "params": 10 * GiB},
                               "full": {"total": 1000 * GiB, "params": 62.5 * GiB}}, "A6000 48 GB")
    assert p["card"] == "A6000 48 GB"
    q, f = p["methods"]["QLoRA"], p["methods"]["full"]
    assert q["fits"] and q["total_gib"] == 40 and q["bytes_per_param"] == 4 and q["usable_gib"] == pytest.approx(43.2)
    assert not f["fits"] and f["bytes_per_param"] == 16 and "does not fit" in f["text"]


def test_projection_when_nothing_fits():
    p = memory_lab.projection({"QLoRA": {"total": 44 * GiB, "params": 1}}, "A6000 48 GB")
    assert not p["methods"]["QLoRA"]["fits"]  # 44 GiB > 90% of 48 GiB
    with pytest.raises(ValueError, match="Unknown card"):
        memory_lab.projection({"QLoRA": {"total": 1, "params": 1}}, "V100 7 GB")


def test_projection_agrees_with_the_estimator_on_65b():
    est = {"full": estimate.estimate("LLaMA-65B", method="full", mixed_precision=True),
           "QLoRA": estimate.estimate("LLaMA-65B", method="qlora")}
    p = memory_lab.projection(est, "A6000 48 GB")["methods"]
    assert p["QLoRA"]["fits"] and not p["full"]["fits"]
    assert p["full"]["bytes_per_param"] == pytest.approx(16, abs=0.5)


def test_bits_range():
    r = memory_lab.bits_range({"nf4": {"a": 4.50, "b": 4.52}, "fp32": {"a": 32.0}}, {"nf4": 4.5, "fp32": 32.0})
    assert r == {"nf4": {"min": 4.50, "max": 4.52, "theory": 4.5}, "fp32": {"min": 32.0, "max": 32.0, "theory": 32.0}}


def test_results_schema_names_every_finding():
    assert {"peaks", "factors", "four_bit", "projection", "training", "bits_per_param"} <= set(memory_lab.RESULTS)
    assert all(isinstance(t, (type, tuple)) for t in memory_lab.RESULTS.values())


def test_the_fork_server_preloads_modules_that_exist():
    # multiprocessing skips a preload name that fails to import without a word, and the workers then
    # pay for the import themselves: every name must import.
    import importlib

    for name in memory_lab.PRELOAD:
        importlib.import_module(name)


def test_stopping_the_fork_server_ends_its_process():
    # The server would otherwise outlive the measurements and hold its preloaded imports all session.
    import multiprocessing as mp
    import os
    from multiprocessing import forkserver

    import psutil

    child = mp.get_context("forkserver").Process(target=os.getpid)
    child.start()
    child.join()
    pid = forkserver._forkserver._forkserver_pid
    assert pid and psutil.pid_exists(pid)
    memory_lab.stop_fork_server()
    assert forkserver._forkserver._forkserver_pid is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_measuring_processes_start_fresh_on_a_cuda_machine(monkeypatch):
    # Seen on an H200: the fork server imports bitsandbytes, which initialises CUDA, and a child forked
    # from it cannot use the GPU. On a CUDA machine each process must be spawned; elsewhere the fork
    # server (preloaded imports, no import wait) stays.
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert memory_lab.start_method() == "spawn"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert memory_lab.start_method() == "forkserver"



def _where(**config):
    """Run in a fresh process by the test below (a function of an importable module, as a notebook's is not)."""
    import gc
    import os

    return {"pid": os.getpid(), "frozen": gc.get_freeze_count(), **config}


def test_fresh_processes_run_elsewhere_in_order_with_the_servers_objects_frozen():
    # The ladder and the training peaks run there so that the kernel never holds their models: each in a
    # process of its own, not this one, results in the order asked. Each worker freezes the server's
    # preloaded objects out of the garbage collector (a collection writes into each object it visits,
    # copying the pages the worker shares with the server: measured ~0.1 GiB more per worker).
    import gc
    import os

    before = gc.get_freeze_count()  # other tests in this process may have frozen objects (the Trainer does)
    rows = memory_lab.in_fresh_processes(_where, [{"i": i} for i in range(3)], workers=2)
    assert [r["i"] for r in rows] == [0, 1, 2]
    pids = {r["pid"] for r in rows}
    assert len(pids) == 3 and os.getpid() not in pids  # max_tasks_per_child=1: a new process per call
    assert all(r["frozen"] > 10_000 for r in rows) and gc.get_freeze_count() == before  # this process: untouched

"""Notebook 04 (QLoRA memory profile) in the ci profile: its findings, from results.json."""

import pytest
from conftest import run_notebook

KEYS = {"profile", "seed", "bits_per_param", "theory_bits", "footprints", "training", "max_abs_error",
        "projection", "four_bit", "missing_backend_message", "calculator_example", "accelerate"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook("04_qlora_memory", tmp_path_factory)


@pytest.mark.notebook
def test_every_finding_is_recorded(results):
    assert KEYS <= set(results)
    assert results["profile"] == "ci"


@pytest.mark.notebook
def test_bits_per_parameter_match_qlora_arithmetic(results):
    bits = results["bits_per_param"]
    assert len(bits["nf4-dq"]) >= 2  # a ladder, not one model
    for name, value in bits["nf4-dq"].items():
        assert abs(value / 4.127 - 1) < 0.05, (name, value)
    for name, value in bits["nf4"].items():
        assert abs(value / 4.5 - 1) < 0.05, (name, value)
    for name in bits["fp32"]:
        assert bits["fp32"][name] > bits["bf16"][name] > bits["int8"][name] > bits["nf4"][name] > bits["nf4-dq"][name]


@pytest.mark.notebook
def test_estimator_within_15_percent_of_every_measured_peak(results):
    runs = results["training"]
    methods = {(r["method"], r["checkpointing"], r["optimizer"]) for r in runs}
    assert {(m, c, "adamw") for m in ("full", "lora", "qlora") for c in (False, True)} <= methods
    assert any(o == "adamw8bit" for _, _, o in methods)
    for r in runs:
        assert r["measured"]["peak"] > 0
        assert abs(r["error"]) <= 0.15, (r["label"], r["error"])
        assert r["error"] == pytest.approx(r["estimate"]["total"] / r["measured"]["peak"] - 1)


@pytest.mark.notebook
def test_measured_peaks_go_down_with_each_trick(results):
    peak = {r["label"]: r["measured"]["peak"] for r in results["training"]}
    assert peak["full"] > peak["lora"] > peak["qlora"] > peak["qlora +ckpt"]
    assert peak["lora +ckpt"] < peak["lora"]
    optim = {r["label"]: r["measured"]["optimizer"] for r in results["training"]}
    assert optim["full +8bit opt"] < 0.5 * optim["full"]


@pytest.mark.notebook
def test_projection_65b_fits_48gb_with_qlora_only(results):
    proj = results["projection"]
    assert proj["card"] == "A6000 48 GB" and proj["batch"] == 1 and proj["checkpointing"]
    assert proj["seq_len"] >= 256
    assert proj["llama65b"]["QLoRA"]["fits"] and proj["llama65b"]["QLoRA"]["total_gb"] < 48
    assert not proj["llama65b"]["full"]["fits"]
    assert proj["full_bytes_per_param_65b"] == pytest.approx(16, abs=0.5)  # ZeRO's mixed-precision Adam


@pytest.mark.notebook
def test_qlora_metric_within_margin_of_lora(results):
    fb = results["four_bit"]
    assert fb["lora"]["field_accuracy"] > 0.5  # both actually learned the task
    assert fb["lora"]["field_accuracy"] - fb["qlora"]["field_accuracy"] <= fb["margin"] <= 0.05


@pytest.mark.notebook
def test_missing_backend_is_one_clear_sentence(results):
    msg = results["missing_backend_message"]
    assert msg and "\n" not in msg and "Traceback" not in msg and "bitsandbytes" in msg

import sys
from unittest import mock

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from labkit import quantize


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny")
    cfg = LlamaConfig(hidden_size=256, intermediate_size=512, num_hidden_layers=1, num_attention_heads=4,
                      num_key_value_heads=4, vocab_size=128)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(path)
    return str(path)


def _one_sentence(msg: str) -> None:
    assert "\n" not in msg and "Traceback" not in msg and msg.endswith(".")
    assert msg.count(". ") == 0  # one sentence, no second one


def test_missing_bitsandbytes_is_one_sentence(tiny_path):
    with mock.patch.dict(sys.modules, {"bitsandbytes.functional": None}):
        with pytest.raises(quantize.QuantizationUnavailable) as err:
            quantize.load(tiny_path, "nf4-dq")
    _one_sentence(str(err.value))
    assert "pip install" in str(err.value)


def test_missing_4bit_kernel_is_one_sentence(tiny_path):
    import bitsandbytes.functional as bnbf

    def no_kernel(*args, **kwargs):
        raise NotImplementedError("No kernel for quantize_4bit on this device (deep inside bitsandbytes)")

    here = "cuda" if torch.cuda.is_available() else "cpu"  # where load quantizes
    with mock.patch.object(bnbf, "quantize_4bit", no_kernel):
        with pytest.raises(quantize.QuantizationUnavailable) as err:
            quantize.load(tiny_path, "nf4")
        messages = {here: str(err.value)}
        for device in {"cpu", "cuda"} - {here}:  # the other device's advice too (without CUDA, no tensor there)
            with pytest.raises(quantize.QuantizationUnavailable) as err:
                quantize.check_backend("nf4", device)
            messages[device] = str(err.value)
    for device, msg in messages.items():
        _one_sentence(msg)
        assert f"for the {device} here" in msg and "deep inside" not in msg
    assert "AVX2" in messages["cpu"] and "run on a CUDA GPU" not in messages["cuda"]
    quantize.check_backend("fp32")  # 16/32-bit needs no backend


def test_unknown_format():
    with pytest.raises(ValueError, match="Unknown format"):
        quantize.quantization_config("nf3")


def test_nf4_asked_by_name():
    assert quantize.quantization_config("nf4").bnb_4bit_quant_type == "nf4"
    assert quantize.quantization_config("fp4").bnb_4bit_quant_type == "fp4"
    assert quantize.quantization_config("nf4-dq").bnb_4bit_use_double_quant


@pytest.mark.parametrize("fmt", ["nf4", "nf4-dq", "fp32"])
def test_bits_per_parameter_match_theory(tiny_path, fmt):
    model = quantize.load(tiny_path, fmt)
    bits = quantize.linear_bits(model)
    assert abs(bits / quantize.THEORY_BITS[fmt] - 1) < 0.05, bits
    fp = quantize.footprint(model)
    if fmt != "fp32":
        # Embeddings and norms stay unquantized, in the compute dtype: fp32 on the CPU, the half precision
        # on a GPU (prepare_model_for_kbit_training upcasts them for training).
        kept = quantize.compute_dtype()
        assert fp["unquantized_params"] == 2 * 128 * 256 + 3 * 256  # embeddings, untied lm_head, norms
        assert fp["unquantized_dtypes"] == {str(kept).replace("torch.", ""): fp["unquantized_params"]}
        assert fp["unquantized_bytes"] >= kept.itemsize * fp["unquantized_params"]


def test_gradient_flows_through_4bit_layer_after_evaluation(tiny_path):
    """An evaluation pass (eval mode, no grad) must not switch the 4-bit layers to a path that
    drops the gradient with respect to their input (bitsandbytes 0.50's CPU repacking)."""
    import bitsandbytes as bnb

    model = quantize.load(tiny_path, "nf4")
    layer = next(m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit))
    x = torch.randn(4, 256, device=layer.weight.device)  # on a CUDA machine, load put the layer on the GPU
    layer.eval()
    with torch.no_grad():
        layer(x)
    layer.train()
    xg = x.clone().requires_grad_(True)
    layer(xg).sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0


@pytest.mark.parametrize("capability, half, dtype", [((7, 5), "fp16", "float16"), ((8, 0), "bf16", "bfloat16")])
def test_a_t4_computes_in_fp16_although_torch_says_it_has_bf16(monkeypatch, capability, half, dtype):
    """A T4 (compute capability 7.5) reports bf16 as supported (emulated, slow): the course's one rule
    looks at the capability, for training, QLoRA's compute dtype and the doctor alike."""
    import torch

    from labkit.model.loading import half_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    assert half_precision() == half
    assert quantize.compute_dtype() == getattr(torch, dtype)


def test_weigh_saves_a_rung_and_counts_it_in_every_format(tmp_path):
    # Notebook 04's ladder: each rung saved with random weights, loaded in each format and counted.
    from labkit.core.architectures import Architecture

    arch = Architecture("tiny", 256, 512, 1, 4, 4, 128, True)
    weighed = quantize.weigh(arch, tmp_path / "rung", formats=("fp32", "bf16", "nf4-dq"))
    assert (tmp_path / "rung" / "config.json").exists() and list(weighed) == ["fp32", "bf16", "nf4-dq"]
    assert weighed["fp32"]["bits"] == 32 and weighed["bf16"]["bits"] == 16
    assert abs(weighed["nf4-dq"]["bits"] / quantize.THEORY_BITS["nf4-dq"] - 1) < 0.05
    fp32 = weighed["fp32"]["footprint"]
    assert fp32["unquantized_params"] == arch.parameter_count()  # the rung is the architecture's shapes
    assert fp32["total_bytes"] > weighed["bf16"]["footprint"]["total_bytes"] > weighed["nf4-dq"]["footprint"][
        "total_bytes"]

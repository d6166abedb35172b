import pytest
import torch
from transformers import LlamaForCausalLM

import labkit as lk
from labkit.core.architectures import ARCHITECTURES, get_architecture


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_parameter_count_matches_transformers(name):
    arch = get_architecture(name)
    with torch.device("meta"):
        model = LlamaForCausalLM(arch.llama_config())
    assert arch.parameter_count() == sum(p.numel() for p in model.parameters())


def test_published_sizes():
    count = {n: a.parameter_count() / 1e9 for n, a in ARCHITECTURES.items()}
    assert 0.13 < count["SmolLM2-135M"] < 0.14
    assert 6.6 < count["Llama-2-7B"] < 6.8
    assert 64 < count["LLaMA-65B"] < 66
    assert 68 < count["Llama-2-70B"] < 70


def test_course_base_matches_the_shipped_model(base):
    model, _ = base
    assert get_architecture("course-base").parameter_count() == sum(p.numel() for p in model.parameters())


def test_unknown_architecture_is_one_sentence():
    with pytest.raises(ValueError, match="Unknown architecture"):
        get_architecture("GPT-5")
    assert lk.architectures.get_architecture("Llama-2-7B").head_dim == 128

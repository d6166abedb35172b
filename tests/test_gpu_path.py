"""The gpu profile's code path, run on the CPU: notebook 01 in profile ``gpu`` on a tiny stand-in for
the hub model that profile names (SmolLM2-135M's architecture, module names, attention heads and tied
embeddings, narrow and one block deep, saved in bf16 like the hub checkpoint). What a GPU adds
(autocast, a loss scaler) is the Trainer's; what the course must get right is here: the bf16
checkpoint loads as fp32 master weights, so the memory bill is the 16 bytes per parameter the notebook
teaches, and the profile's sizes run through the same code."""

import pytest
from conftest import run_notebook

import labkit as lk


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    import torch
    from transformers import LlamaForCausalLM

    _, tokenizer = lk.load_model()
    arch = lk.architectures.get_architecture(lk.get_profile("gpu").model_id.split("/")[-1])
    torch.manual_seed(0)
    # its module names, grouped-query attention (9 heads, 3 for keys and values) and tied embeddings, narrower
    # and one block deep so the profile's sizes run in seconds
    model = LlamaForCausalLM(arch.llama_config(hidden_size=144, intermediate_size=384, num_hidden_layers=1,
                                               vocab_size=len(tokenizer),
                                               bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id))
    folder = tmp_path_factory.mktemp("smollm2-stand-in")
    model.to(torch.bfloat16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, arch, sum(p.numel() for p in model.parameters())


@pytest.mark.notebook
def test_notebook_01_runs_the_gpu_profile_on_a_bf16_hub_style_checkpoint(stand_in, tmp_path_factory):
    folder, arch, n_params = stand_in
    results = run_notebook("01_full_finetuning", tmp_path_factory, profile="gpu", model_id=str(folder), steps=2)
    assert results["profile"] == "gpu" and results["parameters"] == n_params
    memory = results["memory"]
    # fp32 master weights, gradients and AdamW's two moments: 4 + 4 + 8 bytes per parameter, as taught
    # (loaded in the checkpoint's bf16, the weights and gradients would hold 2 bytes each)
    assert memory["bill"]["weights"] == memory["held"]["gradients"] == 4 * n_params
    assert memory["held"]["optimizer"] == 8 * n_params
    assert results["one_step"]["loss_gap"] < 1e-4

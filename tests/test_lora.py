import math

import pytest
import torch

from labkit import architectures as A
from labkit import lora, records
from labkit.core.settings import get_profile


def test_scale():
    assert lora.scale(4, 8) == 2.0
    assert lora.scale(4, 8, rslora=True) == 4.0
    assert lora.scale(1, 3) == lora.scale(1, 3, rslora=True)


def test_hand_forward_equals_peft_layer(tiny):
    model, _ = tiny
    wrapped = lora.apply_lora(model, 4, alpha=8, targets="q,v")
    layer = wrapped.base_model.model.model.layers[0].self_attn.q_proj
    torch.nn.init.normal_(layer.lora_B["default"].weight)  # B starts at zero: make the check bite
    x = torch.randn(5, layer.in_features)
    w, a, b, s = lora.peft_parts(layer)
    assert s == 2.0
    with torch.no_grad():
        assert torch.allclose(lora.lora_forward(x, w, a, b, s), layer(x), atol=1e-5)
        assert torch.allclose(x @ lora.merge(w, a, b, s).T, layer(x), atol=1e-5)
        assert not torch.allclose(layer(x), layer.base_layer(x), atol=1e-3)


def test_init_starts_at_the_frozen_layer():
    a, b = lora.init_adapter(16, 8, 3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (3, 16) and b.shape == (8, 3)
    assert a.abs().max() <= 1 / math.sqrt(16) and a.abs().sum() > 0
    w, x = torch.randn(8, 16), torch.randn(2, 16)
    assert torch.equal(lora.lora_forward(x, w, a, b, 2.0), x @ w.T)


@pytest.mark.parametrize("targets", list(lora.TARGETS))
@pytest.mark.parametrize("rank", [1, 3, 8])
def test_counts_match_peft(tiny, targets, rank):
    model, tok = tiny
    arch = lora.architecture_of(model)
    assert arch.parameter_count() == sum(p.numel() for p in model.parameters())
    wrapped = lora.apply_lora(model, rank, alpha=2 * rank, targets=targets)
    assert lora.lora_parameters(arch, rank, targets) == wrapped.get_nb_trainable_parameters()[0]


def test_architecture_of_the_course_model(base):
    model, _ = base
    assert lora.architecture_of(model).scaled(name="course-base") == A.get_architecture("course-base")


def test_counts_of_real_configs():
    # Llama-2-7B, q,v at r=8: 32 layers * 2 matrices * 8 * (4096 + 4096) = 4,194,304 (the figure
    # PEFT prints for this configuration).
    assert lora.lora_parameters(A.get_architecture("Llama-2-7B"), 8, "q,v") == 4_194_304
    b = lora.adapter_budget("Llama-2-7B", 8, 16, "q,v")
    assert b["trainable_fraction"] < 0.001 and b["adapter_mb"] == pytest.approx(16.0)
    assert b["lora_training_gb"] < b["full_training_gb"] / 5
    assert "Llama-2-7B" in lora.format_budget(b)
    with pytest.raises(ValueError, match="Unknown architecture"):
        lora.adapter_budget("GPT-9", 8)
    with pytest.raises(ValueError, match="at least 1"):
        lora.adapter_budget("SmolLM2-135M", 0)


def test_adapter_file_size(tiny, tmp_path):
    model, _ = tiny
    wrapped = lora.apply_lora(model, 4, alpha=8)
    n = wrapped.get_nb_trainable_parameters()[0]
    size = lora.adapter_file_bytes(wrapped, tmp_path)
    assert 4 * n <= size < 4 * n + 20_000  # fp32 tensors plus a safetensors header


def test_sweep_configs_share_rank_one():
    b = lora.Budget(1e-3, 1, 1)
    s = lora.LoraSweep(ranks=(1, 4, 16), grid=(("all linear", tuple(lora.SCALINGS), b), ("q,v", ("rsLoRA",), b)),
                       full=b, alpha0=2.0, n_train=1, n_task=1, n_people=1, energy=0.9)
    configs = lora.sweep_configs(s)
    assert len(configs) == 1 + 2 * 3 + 1 + 2
    assert len({c.name for c in configs}) == len(configs)
    one = [c for c in configs if c.rank == 1 and c.targets == "all linear"][0]
    assert one.scalings == tuple(lora.SCALINGS) and one.scale == 2.0
    by = {(c.rank, c.scalings[0]): c.scale for c in configs if c.targets == "all linear" and c.rank > 1}
    assert by[(16, "alpha ∝ r")] == 2.0 and by[(16, "fixed alpha")] == 2.0 / 16
    assert by[(16, "rsLoRA")] == 2.0 / 4


def test_sweep_writes_rows_and_resumes(tiny, tmp_path, monkeypatch):
    """The runner on a fake trainer: one row per run, and a second call runs nothing new."""
    model, tok = tiny
    calls = []

    def fake_train(base, tokenizer, config, *args, **kwargs):
        calls.append(config.name)
        return None, {"task": 0.5, "qa_recall": 1.0, "perplexity": 2.0, "trainable": config.rank}, 1.0, 2**20

    monkeypatch.setattr(lora, "train_run", fake_train)
    s = get_profile("ci").lora
    configs = lora.sweep_configs(s)[:3]
    rows = lora.run_sweep(model, tok, configs, [], s, None, 0, tmp_path, str(tmp_path), log=lambda m: None)
    assert [r["run"] for r in rows] == [c.name for c in configs] == calls
    again = lora.run_sweep(model, tok, configs, [], s, None, 0, tmp_path, str(tmp_path), log=lambda m: None)
    assert calls == [c.name for c in configs] and again == rows
    # Another seed is another sweep: it is run, not resumed.
    lora.run_sweep(model, tok, configs[:1], [], s, None, 1, tmp_path, str(tmp_path), log=lambda m: None)
    assert len(calls) == 4
    assert len(records.load_runs(tmp_path)) == 4 and len(lora.latest_runs(tmp_path)) == 3


def test_energy_rank():
    assert lora.energy_rank(torch.tensor([3.0, 0.0, 0.0])) == 1
    assert lora.energy_rank(torch.tensor([1.0, 1.0, 1.0, 1.0]), 0.9) == 4
    assert lora.energy_rank(torch.tensor([1.0, 1.0, 1.0, 1.0]), 0.5) == 2
    # A rank-2 update has energy rank <= 2; a Gaussian matrix needs most of its dimensions.
    u = torch.randn(20, 2) @ torch.randn(2, 30)
    assert lora.energy_rank(torch.linalg.svdvals(u)) <= 2
    assert lora.random_energy_rank((20, 30)) >= 12


def test_update_spectra(tiny):
    import copy

    model, _ = tiny
    after = copy.deepcopy(model)
    with torch.no_grad():
        w = after.model.layers[1].mlp.down_proj.weight
        w += torch.outer(torch.randn(w.shape[0]), torch.randn(w.shape[1]))
    spectra = lora.update_spectra(model, after)
    assert len(spectra) == 2 * 7 and "layers.1.mlp.down_proj" in spectra
    assert lora.energy_rank(spectra["layers.1.mlp.down_proj"]) == 1
    assert float(spectra["layers.0.self_attn.q_proj"].abs().max()) == 0.0



import math

import pytest
import torch

from labkit import architectures as A
from labkit import finetuning, lora, records
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




# ---------------------------------------------------------------- findings, on fake rows

def _row(targets, rank, scalings, task, recall=0.5, ppl=2.0):
    kind = "all" if targets == "all linear" else "qv"
    name = "full fine-tuning" if not rank else f"lora_{kind}_r{rank}_{scalings[0] if rank > 1 else ''}"
    return {"run": name, "config": {"targets": targets, "rank": rank, "scalings": list(scalings)},
            "metrics": {"task": task, "qa_recall": recall, "perplexity": ppl}}


ALL = ("alpha ∝ r", "fixed alpha", "rsLoRA")


def _sweep(ranks=(1, 4, 16, 64)):
    """A fake ci-like sweep: per (targets, scaling), task/recall/perplexity by rank."""
    table = {("all linear", "alpha ∝ r"): {4: (0.99, 0.0, 250), 16: (1.0, 0.0, 35), 64: (0.6, 0.0, 900),
                                           8: (1.0, 0.0, 40)},
             ("all linear", "fixed alpha"): {4: (0.84, 0.73, 4), 16: (0.78, 0.77, 3.6), 64: (0.5, 0.9, 2),
                                             8: (0.8, 0.75, 3.8)},
             ("all linear", "rsLoRA"): {4: (0.98, 0.04, 19), 16: (0.99, 0.0, 30), 64: (0.97, 0.0, 80),
                                        8: (0.985, 0.02, 25)},
             ("q,v", "alpha ∝ r"): {4: (0.9, 0.2, 10), 16: (0.97, 0.05, 20), 64: (0.8, 0.0, 100),
                                    8: (0.95, 0.1, 15)}}
    rows = [_row("all linear", 1, ALL, 0.40, 0.98, 1.8), _row("q,v", 1, ("alpha ∝ r",), 0.3, 0.99, 1.7)]
    for (t, sc), by in table.items():
        rows += [_row(t, r, (sc,), *by[r]) for r in ranks if r > 1 and r in by]
    return rows


def test_curves_share_the_rank_one_run():
    c = lora.curves(_sweep() + [_row("all linear", 0, (), 1.0, 0.0)])
    assert list(c) == ["all linear | alpha ∝ r", "all linear | fixed alpha", "all linear | rsLoRA",
                       "q,v | alpha ∝ r"]
    assert c["all linear | fixed alpha"]["task"] == [(1, 0.40), (4, 0.84), (16, 0.78), (64, 0.5)]
    assert all(v[0] == (1, 0.40) for k, v in ((k, c[k]["task"]) for k in c) if k.startswith("all"))
    assert c["q,v | alpha ∝ r"]["perplexity"][0] == (1, 1.7)


@pytest.mark.parametrize("ranks, want", [((1, 4, 16, 64), {"top": 64, "low": 4, "mid": 16, "near": 16}),
                                         ((1, 8, 64), {"top": 64, "low": 8, "mid": 8, "near": None}),
                                         ((1, 2, 4, 8, 16, 32, 64), {"top": 64, "low": 2, "mid": 32, "near": 8}),
                                         ((1,), {"top": 1, "low": None, "mid": None, "near": None})])
def test_landmark_ranks(ranks, want):
    assert lora.landmark_ranks(ranks) == want


def test_scaling_at_top():
    c = lora.curves(_sweep())
    s = lora.scaling_at_top(c, (1, 4, 16, 64))
    assert s["rs_minus_fixed_at_top"] == pytest.approx(0.97 - 0.5)
    assert s["fixed_top_minus_low"] == pytest.approx(0.5 - 0.84) and s["rs_top_minus_low"] == pytest.approx(-0.01)
    assert s["prop_top_minus_mid"] == pytest.approx({"all linear": 0.6 - 1.0, "q,v": 0.8 - 0.97})
    assert s["prop_perplexity_top_over_mid"] == pytest.approx({"all linear": 900 / 35, "q,v": 5.0})


def test_scaling_at_top_when_it_does_not_hold():
    # Fixed alpha beats rsLoRA at the top rank: the difference is negative, not hidden.
    rows = [_row("all linear", 1, ALL, 0.4), _row("all linear", 8, ("fixed alpha",), 0.9),
            _row("all linear", 8, ("rsLoRA",), 0.6)]
    s = lora.scaling_at_top(lora.curves(rows), (1, 8))
    assert s["rs_minus_fixed_at_top"] == pytest.approx(-0.3)
    assert s["prop_top_minus_mid"] == {}  # alpha ∝ r was run at rank 1 only: nothing to compare
    # A sweep without an rsLoRA curve: no comparison, no crash.
    s = lora.scaling_at_top(lora.curves(rows[:2]), (1, 8))
    assert s["rs_minus_fixed_at_top"] is None and s["rs_top_minus_low"] is None


@pytest.mark.parametrize("ranks", [(1, 4, 16, 64), (1, 8, 64), (1, 2, 4, 8, 16, 32, 64), (4, 16), (1,)])
def test_findings_for_any_swept_ranks(ranks):
    """The documented override ranks=[1, 8, 64] crashed notebook 03: its finding 4 took the largest of
    the task changes from the lowest rank above 1 to 4x that rank, and the sweep had no such rank
    (no 32 beside 8). Every finding must work for any valid list of ranks."""
    rows = [r for r in _sweep(ranks) if r["config"]["rank"] in ranks]
    c = lora.curves(rows)
    s = lora.scaling_at_top(c, ranks)
    sat = lora.saturation(c, ranks)
    f = lora.learning_vs_forgetting(rows, {"task": 0.1, "qa_recall": 1.0})
    assert set(sat["curves"]) == set(c) and set(f["by_rank"]) == {r for r in ranks if r in (1, 4, 8, 16, 64)}
    if ranks == (1, 8, 64):
        assert sat["small_rank_change"] == {} and sat["near"] is None
        assert s["rs_minus_fixed_at_top"] == pytest.approx(0.47)


def test_saturation():
    c = lora.curves(_sweep())
    sat = lora.saturation(c, (1, 4, 16, 64))
    rs = sat["curves"]["all linear | rsLoRA"]
    assert (rs["best"], rs["best_rank"], rs["saturates_at"]) == (0.99, 16, 4)
    assert rs["spread"] == pytest.approx(0.99 - 0.40)
    fixed = sat["curves"]["all linear | fixed alpha"]
    assert (fixed["best_rank"], fixed["saturates_at"]) == (4, 4)
    assert sat["curves"]["q,v | alpha ∝ r"]["saturates_at"] == 16  # 0.9 at rank 4 is 0.07 below the best
    assert sat["small_rank_change"]["all linear | fixed alpha"] == pytest.approx(0.06)
    assert sat["rank1_to_low"]["all linear | rsLoRA"] == pytest.approx(0.58)


def test_saturation_when_it_does_not_hold():
    # Still climbing at the top rank: the task saturates only there.
    rows = [_row("all linear", r, ("rsLoRA",) if r > 1 else ALL, t) for r, t in ((1, 0.1), (4, 0.3), (16, 0.6))]
    sat = lora.saturation(lora.curves(rows), (1, 4, 16))
    assert sat["curves"]["all linear | rsLoRA"]["saturates_at"] == 16


def test_learning_vs_forgetting():
    rows = _sweep() + [_row("all linear", 0, (), 1.0, 0.02)]
    f = lora.learning_vs_forgetting(rows, {"task": 0.1, "qa_recall": 1.0})
    # "Learned" is the course's one definition (notebook 01's finetuning.LEARNED), not a second copy here.
    assert f["learned_at"] == finetuning.LEARNED == 0.95
    assert set(f["learned_runs"]) == {r["run"] for r in rows if r["metrics"]["task"] >= 0.95}
    assert "full fine-tuning" in f["learned_runs"] and f["max_recall_of_learned_runs"] == 0.05
    assert f["min_recall_fixed_alpha"] == 0.73 and f["max_task_fixed_alpha"] == 0.84
    assert f["by_rank"][4] == {"runs": 4, "learned": 2, "max_task_gain": pytest.approx(0.89),
                               "min_recall_lost": pytest.approx(0.27), "max_recall_lost": pytest.approx(1.0)}
    assert f["by_rank"][1]["runs"] == 2 and f["by_rank"][1]["learned"] == 0
    assert f["task_gain"]["full fine-tuning"] == pytest.approx(0.9)


def test_learning_vs_forgetting_when_it_does_not_hold():
    # A run that learned and kept its facts: the learned runs now keep more recall than fixed alpha.
    rows = [_row("all linear", 4, ("rsLoRA",), 0.99, 0.95), _row("all linear", 4, ("fixed alpha",), 0.5, 0.8)]
    f = lora.learning_vs_forgetting(rows, {"task": 0.1, "qa_recall": 1.0})
    assert f["max_recall_of_learned_runs"] > f["min_recall_fixed_alpha"]
    # Nothing learned, no fixed-alpha run: None, not a crash.
    f = lora.learning_vs_forgetting(rows[1:2][:0] + [_row("q,v", 1, ("alpha ∝ r",), 0.2)], {"task": 0, "qa_recall": 1})
    assert f["learned_runs"] == [] and f["max_recall_of_learned_runs"] is None and f["min_recall_fixed_alpha"] is None


def test_energy_summary():
    ranks = {"layers.0.q": 10, "layers.0.v": 40, "layers.1.q": 25, "layers.1.up": 64}
    rand = {"layers.0.q": 150, "layers.0.v": 150, "layers.1.q": 150, "layers.1.up": 160}
    e = lora.energy_summary(ranks, rand, (1, 4, 16, 64))
    assert (e["min"], e["max"], e["median"], e["matrices"]) == (10, 64, 40, 4)
    assert (e["random_min"], e["random_max"]) == (150, 160) and e["max_share_of_random"] == pytest.approx(0.4)
    assert e["updates_above_rank"] == {1: 4, 4: 4, 16: 3, 64: 0}  # "more than r": 64 is not above 64
    # Updates as spread as a random matrix: the share reaches 1.
    assert lora.energy_summary({"a": 150}, {"a": 150}, (1,))["max_share_of_random"] == 1.0
    with pytest.raises(ValueError, match="No energy ranks"):
        lora.energy_summary({}, {}, (1,))


@pytest.mark.parametrize("ranks", [(1, 4, 16, 64), (1, 8, 64), (8,)])
def test_plots_draw_for_any_swept_ranks(ranks):
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    from labkit.views.plots import lora as plots

    rows = [r for r in _sweep(ranks) if r["config"]["rank"] in ranks]
    full = _row("all linear", 0, (), 0.99, 0.0, 22.0)
    for fig in (plots.metric_vs_rank(rows, "task", base=0.01, full=0.99),
                plots.learning_vs_forgetting(rows + [full], {"task": 0.01, "qa_recall": 1.0}),
                plots.spectra({"layers.0.self_attn.q_proj": torch.linspace(2, 0.01, 16)}, ranks)):
        assert fig.axes
        plt.close(fig)


def _reading(rows, ranks=(1, 4, 16, 64), energy_ranks=None):
    c = lora.curves(rows)
    e = energy_ranks or {"a": 10, "b": 70}
    forgetting = lora.learning_vs_forgetting(rows, {"task": 0.1, "qa_recall": 1.0})
    energy = lora.energy_summary(e, {k: 150 for k in e}, ranks)
    return lora.reading(lora.scaling_at_top(c, ranks), forgetting, energy, 0.9)


def test_reading_follows_the_numbers():
    text = " ".join(_reading(_sweep() + [_row("all linear", 0, (), 1.0, 0.02)]))
    assert "fell back for every target choice (all linear -0.40, q,v -0.17)" in text
    assert "rank 64 learned less than rank 4 (-0.34)" in text
    assert "rsLoRA (1/√r) reached 0.97 and fixed alpha 0.50: the scaling, not the rank, decided" in text
    assert "kept 0.05: no rank bought" in text
    assert "need 10-70 directions for 90% of their energy, a random matrix 150-150: far from random, yet 1 of 2" in text


def test_reading_when_the_papers_do_not_hold():
    # fixed alpha beats rsLoRA at the top, a run learns and keeps its facts, alpha ∝ r does not fall back
    rows = [_row("all linear", 1, ALL, 0.4, 1.0), _row("all linear", 4, ("fixed alpha",), 0.5, 0.9),
            _row("all linear", 16, ("fixed alpha",), 0.99, 0.9), _row("all linear", 16, ("rsLoRA",), 0.6, 0.9),
            _row("all linear", 4, ("alpha ∝ r",), 0.5, 0.9), _row("all linear", 16, ("alpha ∝ r",), 0.7, 0.9)]
    text = " ".join(_reading(rows, (1, 4, 16), {"a": 150}))
    assert "fell back for no target choice (all linear +0.20)" in text
    assert "rank 16 learned at least as much as rank 4 (+0.49)" in text
    assert "rsLoRA's advantage, which the rsLoRA paper predicts, does not show" in text
    assert "kept 0.90: learning the task and keeping the facts went together" in text
    assert "not clearly lower-rank than random, yet 1 of 1 need more than rank 16" in text
    no_learning = [_row("all linear", 1, ALL, 0.2, 1.0)]
    assert "no run learned the task" in " ".join(_reading(no_learning, (1,), {"a": 1}))

"""Notebook 03 (LoRA from the inside, rank sweep), executed in the ci profile; its findings asserted."""

import pytest
from conftest import run_notebook

from labkit import lora
from labkit.core.settings import get_profile

# Thresholds (owned here, never read from the results they judge).
# The record task is a format plus copying six values out of the passage: a low-rank update can carry
# it, so the best LoRA run must reach at least 95% of full fine-tuning's field accuracy (within about
# one field in twenty of it).
BEST_LORA_SHARE_OF_FULL = 0.95
# Even the smallest adapters (rank 1; on q,v only 4,096 numbers, 0.13% of the model) must learn the
# task, not just nudge it: on average at least one more of a record's six fields right than the base
# model (which has never seen the record format).
RANK_ONE_MIN_GAIN = 1 / 6
# Full fine-tuning's updates are low-rank compared with noise: each one's 90%-energy rank is at most
# half that of a Gaussian matrix of its shape. Taking the spectrum of the wrong matrix (W itself, or
# anything noise-like) gives ranks near the random ones.
MAX_SHARE_OF_RANDOM_ENERGY_RANK = 0.5


# Effect sizes the seed sweep (benchmarks/seeds.py) reports over seeds, beside which findings held.
EFFECTS = {
    "rsLoRA minus fixed alpha at the top rank": lambda r: r["scaling"]["rs_minus_fixed_at_top"],
    "fixed alpha: top rank minus low rank": lambda r: r["scaling"]["fixed_top_minus_low"],
    "alpha ∝ r: top minus mid rank (largest over targets)": lambda r: max(r["scaling"]["prop_top_minus_mid"].values()),
    "alpha ∝ r: perplexity at the top rank over the mid rank (smallest over targets)": lambda r: min(
        r["scaling"]["prop_perplexity_top_over_mid"].values()),
    "recall left: least of the fixed-alpha runs minus most of the learned runs": lambda r: (
        r["forgetting"]["min_recall_fixed_alpha"] - r["forgetting"]["max_recall_of_learned_runs"]),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook("03_lora_rank", tmp_path_factory)


@pytest.mark.notebook
@pytest.mark.ci_only
def test_the_run_is_the_ci_sweep(results):
    # No override given: the notebook's None parameters keep the ci profile's ranks and energy share.
    ci = get_profile("ci").lora
    assert results["profile"] == "ci" and results["sweep"]["ranks"] == list(ci.ranks) and results["energy"] == ci.energy


@pytest.mark.notebook
def test_hand_written_lora_equals_peft(results):
    assert results["hand_vs_peft_at_init"] < 1e-6
    # The layer was checked with a non-zero B: the adapter really moved its output.
    assert results["adapter_moves_layer_by"] > 1e-2
    assert results["hand_vs_peft"] < 1e-5
    # Merged and unmerged models give the same logits (float tolerance); so does our own merge.
    assert results["merge_gap"] < 1e-3
    assert results["hand_merge_gap"] < 1e-6


@pytest.mark.notebook
def test_counts_equal_peft_for_every_rank_and_target(results):
    counts = results["counts"]
    ranks = set(results["sweep"]["ranks"])
    assert len(ranks) >= 4 and min(ranks) == 1 and max(ranks) == 64
    assert {(c["targets"], c["rank"]) for c in counts} == {(t, k) for t in lora.TARGETS for k in ranks}
    assert all(c["computed"] == c["peft"] for c in counts) and results["counts_match"]
    # Every run of the sweep trained exactly the counted number of parameters.
    by = {(c["targets"], c["rank"]): c["computed"] for c in counts}
    for name, run in results["runs"].items():
        cfg = run["config"]
        if cfg["rank"]:
            assert run["metrics"]["trainable"] == by[(cfg["targets"], cfg["rank"])], name
    # The adapter file holds fp32 A and B (plus a small header), far below the model at rank 1.
    top, one = results["adapter_bytes"][str(max(ranks))], results["adapter_bytes"]["1"]
    assert 4 * by[("all linear", 1)] <= one < 4 * by[("all linear", 1)] + 20_000
    assert one < 0.02 * results["model_bytes"] and top > one


@pytest.mark.notebook
def test_the_sweep_covers_its_grid(results):
    runs = [run for run in results["runs"].values() if run["config"]["rank"]]
    grid = {(t, sc) for t, scalings, _ in results["sweep"]["grid"] for sc in scalings}
    covered = {(run["config"]["targets"], sc) for run in runs for sc in run["config"]["scalings"]}
    assert covered == grid
    ranks = results["sweep"]["ranks"]
    assert len(runs) == sum(1 + (len(ranks) - 1) * len(scalings) for _, scalings, _ in results["sweep"]["grid"])
    assert all(run["seconds"] > 0 and run["peak_mib"] > 0 for run in results["runs"].values())


@pytest.mark.notebook
def test_lora_learns_the_task(results):
    lora_runs = {name: run["metrics"]["task"] for name, run in results["runs"].items() if run["config"]["rank"]}
    full = results["full"]["task"]
    best = max(lora_runs, key=lora_runs.get)
    assert lora_runs[best] >= BEST_LORA_SHARE_OF_FULL * full, (best, lora_runs[best], full)
    base = results["base"]["task"]
    rank_one = {name: run["metrics"]["task"] for name, run in results["runs"].items() if run["config"]["rank"] == 1}
    assert set(rank_one) == {"lora_all_r1", "lora_qv_r1"}
    for name, task in rank_one.items():
        assert task >= base + RANK_ONE_MIN_GAIN, (name, task, base)
    # The findings' gains are the runs' own numbers.
    gains = results["forgetting"]["task_gain"]
    assert all(gains[name] == pytest.approx(task - base) for name, task in lora_runs.items())


@pytest.mark.notebook
def test_full_finetuning_updates_are_low_rank(results):
    ranks = results["energy_ranks"]
    # Every matrix LoRA adapts (7 per block, 4 blocks in the course model) has its rank reported.
    assert len(ranks) == 4 * len(lora.TARGETS["all linear"])
    random_by_shape = results["random_energy_ranks"]
    assert set(random_by_shape) == {"256x256", "256x682", "682x256"}
    for name, k in ranks.items():
        kind = name.split(".")[-1]
        shape = {"gate_proj": "682x256", "up_proj": "682x256", "down_proj": "256x682"}.get(kind, "256x256")
        assert k <= MAX_SHARE_OF_RANDOM_ENERGY_RANK * random_by_shape[shape], (name, k, random_by_shape[shape])
    e = results["energy_summary"]
    assert e["max_share_of_random"] <= MAX_SHARE_OF_RANDOM_ENERGY_RANK
    # The summary's counts agree with the per-matrix ranks it summarises.
    assert e["updates_above_rank"] == {str(k): sum(v > k for v in ranks.values()) for k in results["sweep"]["ranks"]}
    assert (e["min"], e["max"], e["matrices"]) == (min(ranks.values()), max(ranks.values()), len(ranks))


@pytest.mark.notebook
def test_trends_that_held_on_two_seeds(results):
    """Checked on training seeds 0 and 1 in the ci profile before being asserted here; held on seeds 1-10 of the
    sweep on base model v2 (benchmarks/seeds/03_lora_rank.md)."""
    t = results["scaling"]
    # rsLoRA: at the top rank, 1/sqrt(r) scaling learns clearly more than fixed alpha (1/r) ...
    assert t["rs_minus_fixed_at_top"] >= 0.2
    # With fixed alpha a higher rank did not pay off on base model v1 (seeds 0, 1); on v2 (seed 0, ci)
    # rank 64 learned 0.16 more than rank 1, so it is no longer asserted: the notebook prints the direction
    # it measured and the seed sweep reports the effect ("fixed alpha: top rank minus low rank").
    # alpha ∝ r (constant scale) at the top rank: its perplexity on the world's text blows up for every
    # target choice run. Its task score fell back too for every target on base model v1; on v2 (seed 0,
    # ci) q,v moved +0.02 (all linear -0.15), so the task fallback is no longer asserted: the notebook
    # prints, per target, the change it measured.
    assert t["prop_top_minus_mid"] and all(v > 1 for v in t["prop_perplexity_top_over_mid"].values())


@pytest.mark.notebook
@pytest.mark.xfail(strict=False, reason="seed sweep on base model v2: held on 8 of seeds 1-10; on seeds 7 and 9 a "
                   "fixed-alpha run also lost (nearly) all recall (0.00 and 0.01 left, against 0.09 and 0.07 for "
                   "the learned runs)")
def test_forgetting_follows_learning(results):
    """Designed on base model v1 (training seeds 0 and 1): every run that learned the task lost more fact recall
    than any fixed-alpha run (which learned it only partly)."""
    f = results["forgetting"]
    assert f["learned_runs"] and f["min_recall_fixed_alpha"] > f["max_recall_of_learned_runs"]

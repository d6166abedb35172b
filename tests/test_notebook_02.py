"""Notebook 02_forgetting, executed by papermill in the ci profile, with its findings asserted.

The thresholds are this file's own (never read from the results they judge), each with its reason, except
"learned the task": that is the course's one definition, imported from labkit.
"""

import pytest
from conftest import assert_matches_card, run_notebook

from labkit.topics.finetuning import LEARNED

# "before" is measured with the card's own probes (same people, same sizes), so it must reproduce the
# card's numbers up to float noise: 0.01 absolute is under 6 of the card's 600 recall questions;
# perplexity within 1%.
CARD_TOLERANCE = 0.01
CARD_KEYS = ("qa_recall", "bio_recall", "reading", "perplexity")
# "Learned the task" is imported, not set here: it is the course's one definition (notebook 01: field accuracy
# >= 0.95, at most one field in twenty wrong), which notebooks 02 and 03 both judge by; a bar of this file's own
# would let 02 call a run "learned" that 03 does not. The base model scores ~0 on the record task (0.01 in ci).
# Until the course settled on one definition this file had its own bar, 0.7; the kept seed sweep was judged
# again with 0.95 (benchmarks/seeds/02_forgetting.md).
# Full fine-tuning at the highest learning rate must lose this much more fact recall than the low-rank
# LoRA run at the same learning rate and steps (the paper's comparison). The seed sweep on base model v2 (seeds
# 1-10, benchmarks/seeds/02_forgetting.md) measured a gap of 0.49-0.95; 0.3 is 36 of the probe's 120 questions,
# far outside probe noise.
FORGETTING_GAP = 0.3
# Replay (a quarter of the data replaced by old questions and biography sentences) must save at least
# this much recall against the same run without it (the sweep on v2: it saved 0.34-0.90); 0.1 is 12 of the
# 120 questions.
REPLAY_SAVES = 0.1


# Effect sizes the seed sweep (benchmarks/seeds.py) reports over seeds, beside which findings held.
EFFECTS = {
    "recall lost: full at high lr minus low-rank LoRA": lambda r: (
        r["recall_lost"][r["high_lr_run"]]
        - r["recall_lost"][min(r["lora_runs"], key=lambda n: r["runs"][n]["trainable"])]),
    "recall saved by replay": lambda r: r["recall_lost"][r["high_lr_run"]] - r["recall_lost"][r["replay_run"]],
    "task (field accuracy) of the low-rank LoRA run": lambda r: r["final_task"][
        min(r["lora_runs"], key=lambda n: r["runs"][n]["trainable"])],
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook("02_forgetting", tmp_path_factory)


@pytest.mark.notebook
def test_02_before_matches_the_card(results):
    before, card = results["before"], results["card"]
    assert_matches_card(before, card, CARD_KEYS, CARD_TOLERANCE)


@pytest.mark.notebook
def test_02_every_run_starts_from_the_shipped_weights(results):
    from labkit import forgetting, load_model

    shipped, _ = load_model()  # a fresh load: the session's shared model may have been changed by a test
    want = forgetting.state_hash(shipped)
    starts = {name: run["start_hash"] for name, run in results["runs"].items()}
    assert len(starts) >= 6, starts  # two full, two LoRA, top layers, replay
    assert all(h == want for h in starts.values()), {n: h[:12] for n, h in starts.items() if h != want}


@pytest.mark.notebook
def test_02_full_high_lr_forgets_more_than_low_rank_lora(results):
    runs, lost, final = results["runs"], results["recall_lost"], results["final_task"]
    high = results["high_lr_run"]
    low_rank = min(results["lora_runs"], key=lambda n: runs[n]["trainable"])
    assert runs[high]["lr"] == runs[low_rank]["lr"]  # the comparison is at the same learning rate
    # Full fine-tuning learns the task, and loses clearly more fact recall than the low-rank LoRA run. (Whether
    # that LoRA run learned the task too is the next test: it does not hold on every seed.)
    assert final[high] >= LEARNED, final[high]
    assert lost[high] >= lost[low_rank] + FORGETTING_GAP, (lost[high], lost[low_rank])


@pytest.mark.notebook
@pytest.mark.xfail(strict=False, raises=AssertionError,
                   reason="held on 8 of seeds 1-10 of the sweep on base model v2 (and on the test suite's seed 0, "
                   "0.99): on seeds 8 and 9 the low-rank LoRA run ended at field accuracy 0.91 and 0.85, short of the "
                   "course's 'learned' (0.95). LoRA learns less (Biderman et al. 2024); the notebook's verdict says "
                   "'learned less and forgot less'.")
def test_02_low_rank_lora_also_learned_the_task(results):
    """Designed with a bar of 0.7 of this file's own, at which it held on all ten seeds: the low-rank LoRA run,
    at full fine-tuning's learning rate and steps, learned the task as well."""
    runs, final = results["runs"], results["final_task"]
    low_rank = min(results["lora_runs"], key=lambda n: runs[n]["trainable"])
    assert final[low_rank] >= LEARNED, final[low_rank]


@pytest.mark.notebook
def test_02_replay_protects_recall(results):
    lost, final = results["recall_lost"], results["final_task"]
    high, replay = results["high_lr_run"], results["replay_run"]
    assert final[replay] >= LEARNED, final[replay]  # it still learns the task
    assert lost[replay] <= lost[high] - REPLAY_SAVES, (lost[replay], lost[high])


@pytest.mark.notebook
def test_02_forgotten_examples_were_recalled_before(results):
    examples = results["forgotten_examples"]
    assert examples  # the high-lr run forgot facts, so there are examples to show
    for e in examples:
        assert e["before"] == e["truth"] and e["after"] != e["truth"], e

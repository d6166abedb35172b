"""Notebook 01_full_finetuning, executed by papermill in the ci profile, with its findings asserted."""

import pytest
from conftest import run_notebook

from labkit.core.settings import get_profile

# Thresholds (owned here, never read from the results they judge).
# Fine-tuning must teach the record task: +0.3 field accuracy is about two of the six fields of every
# record more right than the base model (which has never seen the format) ...
MIN_FIELD_GAIN = 0.3
# ... and at least half of all fields right on people never seen in training (the skill, not recall).
MIN_FIELD_AFTER = 0.5
# The hand-written cross-entropy and the model's own loss are the same float32 sum over a few hundred
# tokens: they agree to ~1e-6; 1e-4 allows for a different summation order, not for a wrong mask.
LOSS_TOLERANCE = 1e-4
# One AdamW step by hand against the Trainer's, as a share of the update's size: float32 rounding leaves
# ~2e-5; a hand step that forgets weight_decay=0 (torch's AdamW defaults to 0.01, the Trainer here uses 0)
# is off by ~6e-4, and a wrong learning rate or bias correction by far more.
STEP_TOLERANCE = 1e-4
# At an optimizer step every gradient and both AdamW moments exist at once, and none existed at the
# baseline (measured after freed memory was handed back): the peak must rise by at least their size.
MIN_GROWTH_OVER_HELD = 1.0
# The notebook's EarlyStoppingCallback(early_stopping_patience=5): training stops 5 evaluations (epochs)
# after the best one.
PATIENCE = 5
# Early stopping restores the best checkpoint: evaluating it again gives the best loss up to float noise.
RESTORED_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook("01_full_finetuning", tmp_path_factory)


@pytest.mark.notebook
@pytest.mark.ci_only
def test_the_run_is_the_ci_profile(results):
    assert results["profile"] == "ci"


@pytest.mark.notebook
def test_fine_tuning_learns_the_record_task(results):
    fa = results["gain"]["field_accuracy"]
    assert fa["gain"] >= MIN_FIELD_GAIN, fa
    assert fa["after"] >= MIN_FIELD_AFTER, fa


@pytest.mark.notebook
def test_one_step_by_hand_matches_the_library(results):
    s = results["one_step"]
    assert s["loss_gap"] < LOSS_TOLERANCE, s
    assert s["update_size"] > 0 and s["update_gap"] < STEP_TOLERANCE, s


@pytest.mark.notebook
def test_memory_bill_equals_the_tensors_pytorch_held(results):
    m = results["memory"]
    bill, held = m["bill"], m["held"]
    # The bill's gradient and AdamW lines equal the bytes of the gradients and the exp_avg / exp_avg_sq
    # tensors the Trainer's optimizer really held: a wrong formula (one moment, wrong dtype) fails here.
    assert (bill["gradients"], bill["optimizer"]) == (held["gradients"], held["optimizer"]), m
    # Every weight trains: one gradient as large as the weights themselves.
    assert held["gradients"] == bill["weights"]


@pytest.mark.notebook
def test_training_peak_covers_gradients_and_states(results):
    m = results["memory"]
    held = m["held"]["gradients"] + m["held"]["optimizer"]
    assert m["peak_bytes"] - m["baseline_bytes"] >= MIN_GROWTH_OVER_HELD * held, m


@pytest.mark.notebook
def test_overfitting_then_early_stopping(results):
    o = results["overfit"]
    prof = get_profile(results["profile"])  # the run's own profile: the same behaviour in ci and cpu
    steps_per_epoch = -(-prof.overfit_examples // prof.batch_size)
    # The run was planned for every epoch, and stopped before its last one.
    assert o["max_steps"] == prof.overfit_epochs * steps_per_epoch
    assert o["stopped_early"] and o["steps_taken"] < o["max_steps"], o
    # It stopped because validation loss had not improved for PATIENCE epochs since the best.
    assert o["steps_taken"] == o["last_step"] == o["best_step"] + PATIENCE * steps_per_epoch, o
    # Validation loss fell (the format was learned), then rose (the few people were memorised).
    assert o["first_loss"] > o["best_loss"] and o["last_loss"] > o["best_loss"], o
    # The restored model is the best checkpoint.
    assert o["restored_gap"] < RESTORED_TOLERANCE, o

"""Notebook 01_full_finetuning, executed by papermill in the ci profile, with its findings asserted."""

import pytest
from conftest import run_notebook


@pytest.mark.notebook
def test_01_full_finetuning(tmp_path_factory):
    r = run_notebook("01_full_finetuning", tmp_path_factory)
    before, after = r["before"], r["after"]
    # The task metric improves by a clear margin over the base model.
    assert after["field_accuracy"] >= before["field_accuracy"] + 0.3
    assert after["field_accuracy"] >= 0.5
    # The hand-written loss and step match the library.
    assert abs(r["loss_by_hand"] - r["loss_library"]) < 1e-4
    assert r["one_step_change"] > 0 and r["one_step_gap"] < 1e-3  # relative to the update's size
    # Memory: the bill is 16 bytes/param and training needed at least the gradients and states.
    bill = r["bill_bytes"]
    assert bill["total"] == 16 * r["parameters"]
    assert r["peak_memory_bytes"] > r["baseline_memory_bytes"]
    # Overfitting: validation loss bottoms out before the last epoch; early stopping restores it.
    o = r["overfit"]
    assert o["best_step"] < o["last_step"]
    assert o["val_losses"][-1][1] > o["best_loss"]
    assert o["val_losses"][0][1] > o["best_loss"]
    assert abs(o["restored_loss"] - o["best_loss"]) < 1e-3

"""Every notebook, executed by papermill in the ci profile, with its findings asserted."""

import json
from pathlib import Path

import pytest
from conftest import run_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("name", NAMES)
def test_source_notebook_is_clean(name):
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    assert "profile" in "".join(tagged[0]["source"]) and "output_dir" in "".join(tagged[0]["source"])
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.notebook
def test_00_tour(tmp_path_factory):
    r = run_notebook("00_tour", tmp_path_factory)
    m, card = r["measured"], r["card"]
    assert r["profile"] == "ci" and r["model_id"] == "course-base"
    for key in ("qa_recall", "bio_recall", "reading", "reading_k3", "perplexity", "qa_unseen_extraction"):
        assert key in m and key in card
    # The card's numbers, recomputed from the shipped weights in the notebook, are the card's.
    for key, value in card.items():
        assert abs(m[key] - value) <= 0.01 * (value if key == "perplexity" else 1), key
    assert r["unmet_bars"] is not None
    # A never-seen person is unknown to the model: at most chance-level hits.
    assert r["heldout_person_facts_right"] <= 2


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



@pytest.mark.notebook
def test_02_forgetting(tmp_path_factory):
    r = run_notebook("02_forgetting", tmp_path_factory)
    for key in ("before", "card", "runs", "recall_lost", "final_task", "task_minimum", "high_lr_run",
                "replay_run", "lora_runs", "forgetting_monotone_in_steps", "forgotten_examples"):
        assert key in r, key
    # Capabilities before fine-tuning are the shipped model card's.
    for key in ("qa_recall", "bio_recall", "reading", "perplexity"):
        value = r["card"][key]
        assert abs(r["before"][key] - value) <= 0.01 * (value if key == "perplexity" else 1), key
    lost, final, minimum = r["recall_lost"], r["final_task"], r["task_minimum"]
    high, replay = r["high_lr_run"], r["replay_run"]
    # Full fine-tuning at the highest learning rate loses clearly more fact recall than the
    # low-rank LoRA run at the same learning rate and steps, while both learn the task.
    low_rank = min(r["lora_runs"], key=lambda n: r["runs"][n]["trainable"])
    assert final[high] >= minimum and final[low_rank] >= minimum
    assert lost[high] >= lost[low_rank] + 0.3
    # Replay loses less than the same run without it.
    assert lost[replay] < lost[high] - 0.1
    # Every run starts from the same model; the forgotten examples are facts recalled before.
    assert len({json_row(r["runs"][n]["curve"][0]) for n in r["runs"]}) == 1
    assert all(e["before"] == e["truth"] and e["after"] != e["truth"] for e in r["forgotten_examples"])


def json_row(row: dict) -> str:
    return json.dumps(row, sort_keys=True)

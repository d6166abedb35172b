"""Notebook 02_forgetting, executed by papermill in the ci profile, with its findings asserted."""

import json

import pytest
from conftest import run_notebook


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

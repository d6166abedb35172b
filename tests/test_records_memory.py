import json

import pytest
import torch

from labkit import memory, records


def test_results_round_trip(tmp_path):
    records.save_results(tmp_path, "nb", {"a": torch.tensor(0.5), "b": [1, 2]})
    assert records.load_results(tmp_path) == {"notebook": "nb", "a": 0.5, "b": [1, 2]}


def test_nan_finding_is_refused(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        records.save_results(tmp_path, "nb", {"a": float("nan")})


def test_runs_append(tmp_path):
    records.record_run(tmp_path, "r1", {"lr": 1}, {"acc": 0.5}, 1.0, 2**20)
    records.record_run(tmp_path, "r2", {"lr": 2}, {"acc": 0.6}, 1.0, 2**20)
    rows = records.load_runs(tmp_path)
    assert [r["run"] for r in rows] == ["r1", "r2"] and rows[0]["peak_mb"] == 1.0
    assert json.loads((tmp_path / "runs.jsonl").read_text().splitlines()[1])["metrics"]["acc"] == 0.6


def test_full_finetuning_bill_is_16_bytes_per_fp32_param():
    model = torch.nn.Linear(10, 10)
    bill = memory.full_finetuning_bytes(model)
    assert bill["total"] == 16 * 110 and bill["optimizer"] == 8 * 110


def test_peak_sees_an_allocation():
    memory.reset_peak()
    before = memory.peak_bytes()
    block = torch.ones(64 * 2**20 // 4)  # 64 MB
    assert memory.peak_bytes() >= before + 48 * 2**20
    del block

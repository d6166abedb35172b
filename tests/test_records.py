import json

import pytest
import torch

from labkit import records

SCHEMA = {"a": float, "b": list}


def test_results_round_trip(tmp_path):
    records.save_results(tmp_path, "nb", {"a": torch.tensor(0.5), "b": [1, 2]}, SCHEMA)
    assert records.load_results(tmp_path) == {"notebook": "nb", "a": 0.5, "b": [1, 2]}


def test_nan_finding_is_refused(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        records.save_results(tmp_path, "nb", {"a": float("nan"), "b": []}, SCHEMA)


@pytest.mark.parametrize("findings, message", [
    ({"b": [1]}, "'a' is missing"),
    ({"a": "0.5", "b": [1]}, "'a' is str, not float"),
    ({"a": True, "b": [1]}, "'a' is bool, not float"),
    ({"a": None, "b": None}, "'a' is NoneType, not float; 'b' is NoneType, not list"),
])
def test_incomplete_results_are_refused_and_not_written(tmp_path, findings, message):
    with pytest.raises(ValueError, match=message):
        records.save_results(tmp_path, "nb", findings, SCHEMA)
    assert not (tmp_path / "results.json").exists()


def test_ints_count_as_floats(tmp_path):
    records.save_results(tmp_path, "nb", {"a": 1, "b": []}, SCHEMA)
    assert records.load_results(tmp_path)["a"] == 1


def test_runs_append(tmp_path):
    records.record_run(tmp_path, "r1", {"lr": 1}, {"acc": 0.5}, 1.0, 2**20)
    records.record_run(tmp_path, "r2", {"lr": 2}, {"acc": 0.6}, 1.0, 2**20)
    rows = records.load_runs(tmp_path)
    assert [r["run"] for r in rows] == ["r1", "r2"] and rows[0]["peak_mib"] == 1.0
    assert json.loads((tmp_path / "runs.jsonl").read_text().splitlines()[1])["metrics"]["acc"] == 0.6




def test_a_run_record_carries_the_versions_it_was_made_with(tmp_path):
    row = records.record_run(tmp_path, "r1", {"seed": 3}, {"acc": 0.5}, 1.0, 2**20)
    assert row["versions"]["torch"] == records.versions()["torch"] != "not installed"
    assert records.load_runs(tmp_path)[0]["versions"] == row["versions"]


def test_a_run_record_off_its_schema_is_refused_on_reading(tmp_path):
    (tmp_path / "runs.jsonl").write_text(json.dumps({"run": "r1", "config": {}, "metrics": {}}) + "\n")
    with pytest.raises(ValueError, match="line 1, is not a run record.*'seconds' is missing.*Move the file away"):
        records.load_runs(tmp_path)


def test_a_run_record_with_a_wrong_type_is_not_written(tmp_path):
    with pytest.raises(ValueError, match="'metrics' is list"):
        records.record_run(tmp_path, "r1", {}, [0.5], 1.0, 2**20)
    assert not (tmp_path / "runs.jsonl").exists()

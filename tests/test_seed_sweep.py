"""The seed sweep (benchmarks/seeds.py): which tests count as findings, how a run is judged, the table."""

import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import seeds  # noqa: E402


def fake_module():
    """A test module with two findings (one known not to hold), one non-finding test and one effect."""
    m = types.ModuleType("test_notebook_99")

    def test_gain_is_positive(results):
        assert results["gain"] > 0

    @pytest.mark.xfail(strict=True, reason="known not to hold")
    def test_gain_is_large(results):
        assert results["gain"] >= 1

    def test_bad_input(tmp_path_factory):  # runs its own notebook: not a finding of one run
        raise AssertionError

    def test_needs_a_field(results):
        if "field" not in results:
            pytest.skip("no field")
        assert results["field"]

    for fn in (test_gain_is_positive, test_gain_is_large, test_bad_input, test_needs_a_field):
        setattr(m, fn.__name__, fn)
    m.EFFECTS = {"gain": lambda r: r["gain"]}
    return m


def test_seeds_are_parsed_from_ranges_and_lists():
    assert seeds.parse_seeds("1-3") == [1, 2, 3]
    assert seeds.parse_seeds("1,3,7") == [1, 3, 7]
    assert seeds.parse_seeds("1-3,8,2") == [1, 2, 3, 8]
    with pytest.raises(ValueError, match="1-10"):
        seeds.parse_seeds("one")


def test_findings_are_the_tests_that_judge_one_run():
    found = seeds.findings(fake_module())
    assert set(found) == {"test_gain_is_positive", "test_gain_is_large", "test_needs_a_field"}
    assert found["test_gain_is_positive"][1] and not found["test_gain_is_large"][1]


def test_a_run_is_judged_by_the_tests_themselves():
    m = fake_module()
    good, bad = seeds.judge(m, {"gain": 0.5}), seeds.judge(m, {"gain": -0.2, "field": 1})
    assert good["held"] == {"test_gain_is_positive": True, "test_gain_is_large": False}  # skipped: not judged
    assert bad["held"] == {"test_gain_is_positive": False, "test_gain_is_large": False, "test_needs_a_field": True}
    assert bad["why"]["test_gain_is_positive"].startswith("AssertionError")
    assert good["effects"] == {"gain": 0.5} and seeds.judge(m, {})["effects"] == {}
    assert seeds.judge(m, {})["held"]["test_gain_is_positive"] is False  # a missing number is not a pass


def test_the_table_counts_seeds_and_summarises_effects():
    m = fake_module()
    verdicts = {s: seeds.judge(m, {"gain": g}) for s, g in ((1, 0.5), (2, -0.1), (3, 0.3))}
    table = seeds.summarise(m, verdicts)
    assert "| `test_gain_is_positive` | 2 of 3 | 2 |" in table
    assert "| `test_gain_is_large` (marked: known not to hold) | 0 of 3 | 1, 2, 3 |" in table
    assert "| gain | 0.233 | -0.1 | 0.5 | 0.5 | -0.1 | 0.3 |" in table


def test_every_notebook_test_module_has_findings_the_sweep_can_judge():
    for path in sorted((Path(__file__).parent).glob("test_notebook_[0-9][0-9].py")):
        module = seeds.test_module(path.stem.removeprefix("test_notebook_") + "_notebook")
        assert seeds.findings(module), f"{path.name}: no test takes only `results`, so a seed sweep judges nothing"


def test_a_ci_only_check_is_judged_in_ci_and_left_out_in_other_profiles():
    m = fake_module()

    @pytest.mark.ci_only
    def test_the_run_is_the_ci_profile(results):
        assert results["profile"] == "ci"

    m.test_the_run_is_the_ci_profile = test_the_run_is_the_ci_profile
    assert seeds.judge(m, {"gain": 1, "profile": "ci"})["held"]["test_the_run_is_the_ci_profile"] is True
    cpu = seeds.judge(m, {"gain": 1, "profile": "cpu"})["held"]
    assert "test_the_run_is_the_ci_profile" not in cpu and cpu["test_gain_is_positive"] is True


def test_kept_runs_are_judged_again_by_the_tests_as_they_are_now(tmp_path):
    import json

    for seed, gain in ((1, 0.5), (2, -0.1)):
        (tmp_path / f"seed{seed}" / "out").mkdir(parents=True)
        (tmp_path / f"seed{seed}" / "out" / "results.json").write_text(json.dumps({"gain": gain}))
    verdicts = seeds.rejudge(fake_module(), [1, 2], tmp_path, {"1": {"seconds": 100, "peak_gib": 1.2}})
    assert verdicts[1]["held"]["test_gain_is_positive"] and not verdicts[2]["held"]["test_gain_is_positive"]
    assert verdicts[1]["seconds"] == 100 and verdicts[2]["seconds"] is None
    with pytest.raises(ValueError, match="No kept run of seed 3"):
        seeds.rejudge(fake_module(), [3], tmp_path)


def test_runs_go_to_workers_and_are_judged_in_the_main_thread(monkeypatch):
    """A finding that loads a model must be judged where the test suite judges it: in the main thread (loading
    a model in a worker thread failed on every seed of a sweep while the suite passed)."""
    import threading

    m = fake_module()

    def test_judged_in_the_main_thread(results):
        assert threading.current_thread() is threading.main_thread()

    m.test_judged_in_the_main_thread = test_judged_in_the_main_thread
    ran_in = []

    def fake_run(name, profile, parameters, keep=None, threads=None):
        ran_in.append(threading.current_thread() is threading.main_thread())
        return {"results": {"gain": parameters["seed"] / 10, "seed": parameters["seed"]}, "seconds": 1.0,
                "peak_gib": 0.5}

    monkeypatch.setattr(seeds, "test_module", lambda name: m)
    monkeypatch.setattr(seeds, "run_one", fake_run)
    verdicts = seeds.sweep("99_fake", [1, 2, 3], workers=2)
    assert sorted(verdicts) == [1, 2, 3] and ran_in == [False] * 3
    assert all(v["held"]["test_judged_in_the_main_thread"] for v in verdicts.values())
    assert verdicts[2]["effects"] == {"gain": 0.2} and verdicts[3]["peak_gib"] == 0.5

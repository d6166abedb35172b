"""lk.doctor: the first-cell report of what this machine has for the course."""

import labkit as lk
from labkit.engine import doctor


def test_the_facts_name_the_stack_the_device_and_the_profile():
    facts = doctor.check("12_scaling_out")
    assert set(facts["versions"]) == set(doctor.STACK) and facts["versions"]["torch"]
    assert facts["profile"] in ("cpu", "gpu") and facts["expected"] == lk.get_profile(facts["profile"]).expected_time(
        "12_scaling_out")
    assert facts["base_model"] and facts["base_model_problem"] is None


def test_a_missing_part_is_named_with_what_needs_it_and_how_to_get_it(monkeypatch):
    real = doctor.importlib.util.find_spec
    monkeypatch.setattr(doctor.importlib.util, "find_spec", lambda name: None if name == "bitsandbytes" else real(name))
    facts = doctor.check()
    assert list(facts["missing"]) == ["bitsandbytes"]
    text = doctor.report(facts)
    assert "Missing bitsandbytes (needed by notebook 04 (4-bit and 8-bit)): pip install 'labkit[quant]'" in text


def test_no_course_model_is_reported_not_raised(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path))  # a data folder without the model
    facts = doctor.check()
    assert facts["base_model"] is None and str(tmp_path / "base_model") in facts["base_model_problem"]
    assert "Course model NOT FOUND" in doctor.report(facts)


def test_a_gpu_report_says_which_mixed_precision_it_gets():
    facts = {"python": "3.12.0", "platform": "linux", "versions": {"torch": "2.11.0"}, "profile": "gpu",
             "expected": "~10 min on a T4", "base_model": "/content/x/data/base_model", "base_model_problem": None,
             "missing": {}, "device": {"kind": "cuda", "name": "Tesla T4", "capability": "7.5", "gib": 14.7,
                                       "mixed_precision": "fp16 (with a loss scaler; bf16 is only emulated)"}}
    text = doctor.report(facts, "01_full_finetuning")
    assert "GPU Tesla T4 (compute capability 7.5, 14.7 GiB; mixed precision: fp16" in text
    assert "01_full_finetuning takes ~10 min on a T4" in text and "Nothing optional is missing." in text
    assert "(picked from the machine)" in text


def test_the_notebooks_profile_is_the_one_reported():
    facts = doctor.check("00_tour", "ci")
    assert facts["profile"] == "ci" and facts["profile_given"]
    assert facts["expected"] == lk.get_profile("ci").expected_time("00_tour")
    assert "Profile: ci (from the parameters)" in doctor.report(facts, "00_tour")

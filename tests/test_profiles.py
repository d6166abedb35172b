import pytest

from labkit.core.settings import PROFILES, get_profile


def test_named_profiles():
    assert get_profile("ci").model_id == "course-base"
    assert get_profile("gpu").model_id.startswith("HuggingFaceTB/")


def test_detect_on_cpu_machine():
    import torch

    assert get_profile(None).name == ("gpu" if torch.cuda.is_available() else "cpu")


def test_ci_is_smallest():
    ci, cpu = PROFILES["ci"], PROFILES["cpu"]
    assert ci.steps < cpu.steps and ci.n_train < cpu.n_train


def test_unknown_profile_is_one_clear_error():
    with pytest.raises(ValueError, match="Unknown profile 'fast'.*ci, cpu, gpu"):
        get_profile("fast")


def test_override_and_wrong_type():
    assert get_profile("ci", steps=5).steps == 5
    assert get_profile("ci", lr=1).lr == 1.0
    with pytest.raises(TypeError, match="'steps' must be int"):
        get_profile("ci", steps="5")
    with pytest.raises(ValueError, match="no field 'stepz'"):
        get_profile("ci", stepz=5)


def test_every_profile_states_time_for_every_notebook():
    for prof in PROFILES.values():
        for nb in ("00_tour", "01_full_finetuning"):
            assert prof.expected_time(nb) != "not measured yet"

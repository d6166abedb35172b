import pytest

from labkit import lora
from labkit.core.settings import PROFILES, SettingsError, get_profile


def test_named_profiles():
    assert get_profile("ci").model_id == "course-base"
    assert get_profile("gpu").model_id.startswith("HuggingFaceTB/")


def test_detect_on_cpu_machine():
    import torch

    assert get_profile(None).name == ("gpu" if torch.cuda.is_available() else "cpu")


def test_ci_is_smallest():
    ci, cpu = PROFILES["ci"], PROFILES["cpu"]
    assert ci.steps < cpu.steps and ci.n_train < cpu.n_train
    assert ci.rag.n_people <= cpu.rag.n_people and len(ci.lora.ranks) <= len(cpu.lora.ranks)


def test_unknown_profile_is_one_clear_error():
    with pytest.raises(SettingsError, match="Unknown profile 'fast'.*ci, cpu, gpu"):
        get_profile("fast")


def test_overrides_are_applied_and_none_keeps_the_profile():
    assert get_profile("ci", steps=5).steps == 5
    assert get_profile("ci", lr=1).lr == 1.0 and isinstance(get_profile("ci", lr=1).lr, float)
    assert get_profile("ci", steps=None).steps == PROFILES["ci"].steps
    prof = get_profile("ci", lora={"ranks": [1, 8, 64], "energy": None})  # papermill gives lists
    assert prof.lora.ranks == (1, 8, 64) and prof.lora.energy == PROFILES["ci"].lora.energy
    assert prof.lora.grid == PROFILES["ci"].lora.grid


@pytest.mark.parametrize("overrides, message", [
    ({"steps": 0}, r"Profile.steps = 0 .* whole number >= 1"),
    ({"steps": "5"}, r"Profile.steps = '5' .* whole number"),
    ({"steps": 2.5}, r"Profile.steps = 2.5"),
    ({"steps": True}, r"Profile.steps = True"),
    ({"lr": 0}, r"Profile.lr = 0.0 .* number > 0"),
    ({"lr": -1e-3}, r"number > 0"),
    ({"stepz": 5}, r"no setting 'stepz'; valid settings are model_id, n_train, .*steps"),
    ({"lora": {"ranks": [4, 0]}}, r"LoraSweep.ranks = \(4, 0\) .* each a whole number >= 1"),
    ({"lora": {"ranks": []}}, r"non-empty list"),
    ({"lora": {"rank": [4]}}, r"LoraSweep has no setting 'rank'; valid settings are ranks"),
    ({"lora": 4}, r"'lora' is a group: give a dict"),
    ({"lora": {"energy": 1.5}}, r"in \[0, 1\]"),
    ({"forgetting": {"replay_fraction": -0.1}}, r"replay_fraction = -0.1 .* in \[0, 1\]"),
    ({"rag": {"dense": "yes"}}, r"Rag.dense = 'yes' .* True or False"),
    ({"memory": {"workers": 0}}, r"MemoryLab.workers = 0"),
])
def test_bad_values_are_one_clear_error(overrides, message):
    with pytest.raises(SettingsError, match=message):
        get_profile("ci", **overrides)


def test_profiles_themselves_are_validated():
    with pytest.raises(SettingsError, match="Budget.steps = 0"):
        PROFILES["ci"].lora.full.override(steps=0)


def test_every_profile_states_time_for_every_notebook():
    from pathlib import Path

    notebooks = sorted(p.stem for p in (Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(notebooks) >= 7
    for prof in PROFILES.values():
        for nb in notebooks:
            assert prof.expected_time(nb) != "not measured yet", (prof.name, nb)


def test_every_profile_has_a_sweep_of_known_targets_and_scalings():
    for prof in PROFILES.values():
        s = prof.lora
        assert min(s.ranks) == 1 and max(s.ranks) == 64 and len(s.ranks) >= 4
        assert {t for t, _, _ in s.grid} == set(lora.TARGETS)
        assert all(set(scalings) <= set(lora.SCALINGS) for _, scalings, _ in s.grid)

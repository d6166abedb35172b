"""course.py (the fresh-machine commands) and benchmarks/report.py (the regression report), without
installing or running anything heavy: the commands they would run are recorded instead."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import report  # noqa: E402

import course  # noqa: E402


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A stand-in checkout: requirements.txt and pyproject.toml only; commands are recorded."""
    for name in ("requirements.txt", "pyproject.toml"):
        (tmp_path / name).write_text(f"{name} v1\n")
    monkeypatch.setattr(course, "ROOT", tmp_path)
    monkeypatch.setattr(course, "VENV", tmp_path / ".venv")
    ran = []
    monkeypatch.setattr(course.subprocess, "run", lambda cmd, cwd=None, check=False: ran.append(cmd) or
                        type("Done", (), {"returncode": 0})())
    return tmp_path, ran


def test_install_happens_once_and_again_when_the_requirements_change(checkout):
    root, ran = checkout
    here = Path(sys.executable)
    course.ensure_installed(here)
    course.ensure_installed(here)
    assert [c[-2:] for c in ran] == [["-r", "requirements.txt"]]  # the second call installs nothing
    (root / "requirements.txt").write_text("requirements.txt v2\n")
    course.ensure_installed(here)
    assert len(ran) == 2


def test_each_command_runs_its_tool_with_the_installed_python(checkout, monkeypatch):
    _, ran = checkout
    monkeypatch.setattr(course, "ensure_installed", lambda python: Path("/py"))
    for argv, tail in ((["lab"], ["-m", "jupyter", "lab", "notebooks"]), (["test", "-x"], ["-m", "pytest", "-x"]),
                       (["report", "--profile", "cpu"], ["benchmarks/report.py", "--profile", "cpu"])):
        ran.clear()
        assert course.main(argv) == 0
        assert ran == [["/py", *tail]], argv
    with pytest.raises(SystemExit):
        course.main(["deploy"])


def test_a_fresh_checkout_gets_a_virtual_environment(checkout, monkeypatch):
    root, ran = checkout
    made = []
    monkeypatch.setattr(course.venv.EnvBuilder, "create", lambda self, folder: made.append(folder) or folder.mkdir())
    python = course.ensure_installed(None)
    assert made == [root / ".venv"] and python == course.venv_python(root / ".venv")
    assert ran and ran[0][0] == str(python)


def test_the_report_lists_every_finding_with_its_verdict():
    rows = [{"notebook": "12_scaling_out", "ok": True, "seconds": 99.1, "peak_gib": 1.71, "error": "",
             "held": {"test_a": True, "test_b": False}, "why": {"test_b": "AssertionError: 0.3 > 0.1"},
             "effects": {"gap": 7.5e-5}, "expected_to_fail": []},
            {"notebook": "05_rag", "ok": False, "seconds": 3.0, "peak_gib": 0.2, "error": "boom", "held": {},
             "why": {}, "effects": {}, "expected_to_fail": []}]
    text = report.markdown(rows, "cpu")
    assert "| 12_scaling_out | yes | 99.1 | 1.71 | 1 of 2 |" in text and "| 05_rag | FAILED |" in text
    assert "- **did not hold**: `test_b` - AssertionError: 0.3 > 0.1" in text and "- gap: 7.5e-05" in text
    assert "boom" in text


def test_a_partial_report_run_updates_its_rows_and_keeps_the_others(tmp_path, monkeypatch):
    def fake_report(names, profile, done=None):
        rows = [{"notebook": n, "ok": True, "seconds": 2.0, "peak_gib": 0.5, "error": "", "held": {},
                 "why": {}, "effects": {}, "expected_to_fail": [], "step_s": 0.6} for n in names]
        for row in rows:
            done(row)
        return rows

    monkeypatch.setattr(report, "report", fake_report)
    for only in (["00_tour", "01_full_finetuning"], ["01_full_finetuning"]):
        with pytest.raises(SystemExit) as exit:
            report.main(["--profile", "cpu", "--out", str(tmp_path), "--only", *only])
        assert exit.value.code == 0
    import json

    rows = json.loads((tmp_path / "course-cpu.json").read_text())
    assert [r["notebook"] for r in rows] == ["00_tour", "01_full_finetuning"]
    assert "| 01_full_finetuning | yes | 2.0 | 0.5 | 0 of 0 | 0.6 |" in (tmp_path / "course-cpu.md").read_text()


def test_rejudging_uses_the_stored_results_and_leaves_ci_only_checks_out_of_other_profiles(tmp_path):
    import json

    stale = {"notebook": "00_tour", "ok": True, "seconds": 50.0, "peak_gib": 0.9, "error": "", "step_s": 0.5,
             "held": {"test_the_run_is_the_ci_profile_on_the_course_model": False}, "why": {}, "effects": {},
             "expected_to_fail": [], "results": {"profile": "cpu", "model_id": "course-base", "unmet_bars": {}}}
    (tmp_path / "course-cpu.json").write_text(json.dumps([stale]))
    report.main(["--profile", "cpu", "--out", str(tmp_path), "--rejudge"])
    held = json.loads((tmp_path / "course-cpu.json").read_text())[0]["held"]
    assert "test_the_run_is_the_ci_profile_on_the_course_model" not in held
    assert held["test_the_shipped_model_meets_the_bars_on_its_card"] is True


def test_rejudging_a_row_stored_without_results_keeps_its_verdicts_less_ci_only_checks(tmp_path):
    import json

    old = {"notebook": "00_tour", "ok": True, "seconds": 50.0, "peak_gib": 0.9, "error": "", "step_s": 0.5,
           "held": {"test_the_run_is_the_ci_profile_on_the_course_model": False,
                    "test_the_shipped_model_meets_the_bars_on_its_card": True},
           "why": {"test_the_run_is_the_ci_profile_on_the_course_model": "AssertionError: "}, "effects": {}}
    (tmp_path / "course-cpu.json").write_text(json.dumps([old]))
    report.main(["--profile", "cpu", "--out", str(tmp_path), "--rejudge"])
    row = json.loads((tmp_path / "course-cpu.json").read_text())[0]
    assert row["held"] == {"test_the_shipped_model_meets_the_bars_on_its_card": True} and row["why"] == {}

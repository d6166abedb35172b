"""The instructors' guide and the README's notebook table are written from the benchmark's reports,
never by hand; the troubleshooting list quotes errors labkit really raises."""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import guide  # noqa: E402


def row(name, seconds, peak, ok=True, held=None, step=0.5):
    return {"notebook": name, "ok": ok, "seconds": seconds, "peak_gib": peak, "error": "" if ok else "boom",
            "held": held or {"test_a": True}, "why": {}, "effects": {}, "expected_to_fail": [], "step_s": step}


def test_the_committed_guide_and_readme_table_match_the_committed_reports():
    assert guide.main(["--check"]) == 0, "run python benchmarks/guide.py after a benchmark report"


def test_the_table_shows_measured_numbers_and_says_what_was_not_measured(tmp_path):
    ci = [row("00_tour", 35.1, 0.97), row("01_full_finetuning", 200, 1.2), row("02_forgetting", 9, 0.5, ok=False)]
    (tmp_path / "course-ci.json").write_text(json.dumps(ci))
    (tmp_path / "course-cpu.json").write_text(json.dumps([row("00_tour", 150.0, 1.01, step=0.7)]))
    reports = guide.load_reports(tmp_path)
    table = guide.notebooks_table(reports)
    assert "| 35 s | 2.5 min | not measured | 0.97 GiB / 1.01 GiB |" in table
    assert "| 3.3 min | not measured | not measured | 1.20 GiB / not measured |" in table
    assert "| failed |" in table
    assert "`ci` at 0.50-0.50 s per reference step, `cpu` at 0.70-0.70" in table
    text = guide.guide(reports)
    assert "| 00_tour | 35 s | 2.5 min | not measured | 0.97 GiB | 1.01 GiB | 1 of 1 / 1 of 1 |" in text


def test_a_finding_that_did_not_hold_in_cpu_is_named_in_the_guide(tmp_path):
    (tmp_path / "course-cpu.json").write_text(json.dumps([row("03_lora_rank", 600, 1.0,
                                                              held={"test_x": True, "test_saturates": False})]))
    text = guide.guide(guide.load_reports(tmp_path))
    assert "In `cpu`, these ci-sized findings did not hold: `test_saturates`." in text


def test_the_readme_table_is_replaced_between_its_markers_only():
    readme = f"intro\n{guide.START}\nold table\n{guide.END}\nafter\n"
    assert guide.readme_with_table(readme, "NEW") == f"intro\n{guide.START}\nNEW\n{guide.END}\nafter\n"


def test_troubleshooting_quotes_real_errors_and_leaves_the_environment_as_it_was():
    before = dict(os.environ)
    modules = set(sys.modules)
    rows = guide.troubleshooting()
    assert dict(os.environ) == before
    assert all(sys.modules.get(m) is not None for m in modules if m.startswith("bitsandbytes"))
    messages = {situation: message for situation, message, _ in rows}
    assert len(rows) == len(guide._mistakes())
    assert any("Unknown profile 'gpu-large'" in m for m in messages.values())
    assert any(m.startswith("QuantizationUnavailable: nf4 needs bitsandbytes") for m in messages.values())
    assert any("the hub cannot be reached" in m for m in messages.values())


def _seconds(expected: str) -> float:
    import re

    match = re.match(r"~?([\d.]+) (s|min)", expected)
    assert match, f"an expected time reads like '~4.5 min', not {expected!r}"
    return float(match.group(1)) * (60 if match.group(2) == "min" else 1)


def test_each_profiles_expected_time_agrees_with_the_measured_one():
    """Each notebook prints its profile's expected time (and lk.doctor does): within a factor of two of
    the benchmark's measurement, the spread of this machine type's speed from day to day."""
    import labkit as lk

    reports = guide.load_reports()
    assert reports, "no measurements in benchmarks/measured"
    for profile, rows in reports.items():
        prof = lk.get_profile(profile)
        for name, row in rows.items():
            expected = _seconds(prof.expected_time(name))
            assert row["seconds"] / 2 <= expected <= 2 * row["seconds"], (profile, name, expected, row["seconds"])

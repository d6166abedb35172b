"""Execute the whole course headless in one profile and write a regression report.

    python benchmarks/report.py [--profile ci] [--only 00_tour 12_scaling_out] [--out reports]

Per notebook: wall time, peak memory (as in benchmarks/notebooks.py), and each finding its test module
asserts (the tests that judge one run's results, as in benchmarks/seeds.py) with pass/fail and the
numbers the module names as effect sizes. The thresholds are the tests' own, set for the ci profile: in
another profile a failed finding says that the ci-sized claim does not hold there, which is worth a
look, not necessarily a bug. Writes ``OUT/course-PROFILE.md`` and ``OUT/course-PROFILE.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import ci_only, findings, judge, test_module  # noqa: E402

from notebooks import BUDGET_GIB, BUDGET_S, NOTEBOOKS, ROOT, reference_step_seconds, run_one  # noqa: E402


def report(names: list[str], profile: str, done=None) -> list[dict]:
    """Run each notebook once in ``profile`` and judge it: [{notebook, ok, seconds, peak_gib, error,
    held, why, effects, step_s}] (``step_s``: the machine's reference step just before the run).
    ``done(row)`` is called after each notebook."""
    rows = []
    for name in names:
        step_s = round(reference_step_seconds(), 3)
        run = run_one(name, profile)
        row = {k: run[k] for k in ("notebook", "ok", "seconds", "peak_gib", "error")}
        row["step_s"] = step_s
        row["results"] = run.get("results")  # kept, so the findings can be judged again (--rejudge)
        rows.append(verdicts(row, profile))
        if done:
            done(row)
        print(f"{name}: {row['seconds']} s, {row['peak_gib']} GiB, "
              f"{sum(row['held'].values())} of {len(row['held'])} findings held", file=sys.stderr)
    return rows


def verdicts(row: dict, profile: str) -> dict:
    """``row`` with its findings judged by the notebook's test module on the run's stored results. A row
    stored without results keeps its verdicts, less the ci_only checks outside the ci profile."""
    module = test_module(row["notebook"])
    tests = findings(module)
    if row.get("results") is not None:
        row |= judge(module, row["results"])
    elif profile != "ci":
        dropped = {n for n, (fn, _) in tests.items() if ci_only(fn)}
        row["held"] = {n: v for n, v in row.get("held", {}).items() if n not in dropped}
        row["why"] = {n: v for n, v in row.get("why", {}).items() if n not in dropped}
    for key in ("held", "why", "effects"):
        row.setdefault(key, {})
    row["expected_to_fail"] = [n for n, (_, expected) in tests.items() if not expected]
    return row


def markdown(rows: list[dict], profile: str) -> str:
    lines = [f"# The course in the `{profile}` profile", "",
             f"Made by `python benchmarks/report.py --profile {profile}` (last run {time.strftime('%Y-%m-%d')}). "
             f"Budget (ci): {BUDGET_S} s and {BUDGET_GIB:.2f} GiB per notebook. Machine speed: the seconds of "
             "one reference training step just before each run (the slower the machine, the larger).", "",
             "| notebook | ran | wall time (s) | peak memory (GiB) | findings held | machine speed (s/step) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['notebook']} | {'yes' if r['ok'] else 'FAILED'} | {r['seconds']} | {r['peak_gib']} | "
                     f"{sum(r['held'].values())} of {len(r['held'])} | {r.get('step_s', '')} |")
    for r in rows:
        lines += ["", f"## {r['notebook']}", ""]
        if r["error"]:
            lines += ["The run failed:", "", "```", r["error"][-1500:], "```"]
        for name, held in r["held"].items():
            note = " (known not to hold)" if name in r["expected_to_fail"] else ""
            lines.append(f"- {'held' if held else '**did not hold**'}: `{name}`{note}"
                         + (f" - {r['why'][name]}" if name in r["why"] else ""))
        for label, value in r["effects"].items():
            lines.append(f"- {label}: {value:.4g}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci", choices=("ci", "cpu", "gpu"))
    parser.add_argument("--only", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    parser.add_argument("--rejudge", action="store_true",
                        help="judge the stored runs again with the tests as they are now (no notebook runs)")
    ns = parser.parse_args(argv)
    names = ns.only or sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    unknown = [n for n in names if not (NOTEBOOKS / f"{n}.ipynb").exists()]
    if unknown:
        parser.error(f"no notebook {', '.join(unknown)}")
    ns.out.mkdir(parents=True, exist_ok=True)
    path = ns.out / f"course-{ns.profile}.json"
    # a partial run (--only) updates its notebooks' rows and keeps the others
    kept = {r["notebook"]: r for r in json.loads(path.read_text())} if path.exists() else {}

    def write(row):
        kept[row["notebook"]] = row
        rows = [kept[n] for n in sorted(kept)]
        path.write_text(json.dumps(rows, indent=1) + "\n")
        path.with_suffix(".md").write_text(markdown(rows, ns.profile))

    if ns.rejudge:
        for row in [kept[n] for n in names if n in kept]:
            write(verdicts(row, ns.profile))
        print(f"report: {path.with_suffix('.md')} (judged again)")
        return
    rows = report(names, ns.profile, done=write)
    print(f"report: {path.with_suffix('.md')}")
    sys.exit(0 if all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
    main()

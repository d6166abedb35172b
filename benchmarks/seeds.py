"""Run a notebook's profile on several world seeds and report which asserted findings held on each.

    python benchmarks/seeds.py 06_peft_family --seeds 1-10 [--workers 2] [--profile ci] [--keep DIR]
    python benchmarks/seeds.py 06_peft_family --seeds 1-10 --rejudge DIR   # judge kept runs again

A finding is a test of the notebook's test module (``tests/test_notebook_NN.py``) that judges one
run's results: a ``test_*`` function whose only argument is ``results``. Each seed's run is judged by
those same functions, so the sweep asserts exactly what the suite asserts (no second copy of a
threshold). The module's optional ``EFFECTS`` dict names effect sizes (``{label: results -> number}``),
reported as mean, min and max over the seeds. A test marked ``xfail`` is a finding known not to hold; it
is reported as such.

``--rejudge DIR`` judges the runs an earlier sweep kept in DIR (``--keep``) with the test module as it is
now, without running them again: for a test changed after the sweep (the test file says why).
Writes ``benchmarks/seeds/NAME.md`` (the table the README links to) and ``NAME.json`` (every seed's
verdicts and effects). Runs go in parallel workers, each kernel on ``cores // workers`` threads.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebooks import NOTEBOOKS, ROOT, run_one  # noqa: E402

OUT = ROOT / "benchmarks" / "seeds"


def parse_seeds(text: str) -> list[int]:
    """``"1-5"``, ``"1,3,7"`` or ``"1-3,8"`` -> a sorted list of distinct seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            low, _, high = part.partition("-")
            seeds.update(range(int(low), int(high or low) + 1))
        except ValueError:
            raise ValueError(f"Seeds {text!r}: write them like 1-10, 1,3,7 or 1-3,8.") from None
    if not seeds:
        raise ValueError(f"Seeds {text!r}: no seed given.")
    return sorted(seeds)


def test_module(name: str):
    """The test module of notebook ``name`` (``tests/test_notebook_NN.py``), imported."""
    path = ROOT / "tests" / f"test_notebook_{name[:2]}.py"
    if not path.exists():
        raise ValueError(f"Notebook {name!r} has no test module {path.name} to judge its findings.")
    sys.path.insert(0, str(path.parent))  # the module imports conftest
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def findings(module) -> dict:
    """The module's tests that judge one run: {name: (function, expected to hold)}."""
    out = {}
    for name, fn in inspect.getmembers(module, inspect.isfunction):
        if name.startswith("test_") and list(inspect.signature(fn).parameters) == ["results"]:
            xfail = any(mark.name == "xfail" for mark in getattr(fn, "pytestmark", []))
            out[name] = (fn, not xfail)
    return out


def ci_only(fn) -> bool:
    """Marked ``ci_only``: the test checks that the run used the ci profile's own settings."""
    return any(mark.name == "ci_only" for mark in getattr(fn, "pytestmark", []))


def judge(module, results: dict) -> dict:
    """Every finding of ``module`` on one run: {"held": {name: bool}, "why": {name: first line of the
    failure}, "effects": {label: number}}."""
    import pytest

    held, why = {}, {}
    for name, (fn, _) in findings(module).items():
        if results.get("profile", "ci") != "ci" and ci_only(fn):
            continue  # it checks the ci profile's own settings: not a finding of another profile
        try:
            fn(results)
            held[name] = True
        except pytest.skip.Exception:  # the test does not apply to this run
            continue
        except (Exception, pytest.fail.Exception) as e:  # an assertion, or a key the run lacks: it did not hold
            held[name] = False
            why[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
    effects = {}
    for label, effect in getattr(module, "EFFECTS", {}).items():
        try:
            effects[label] = float(effect(results))
        except Exception:  # a run without that number: left out of the effect's summary
            pass
    return {"held": held, "why": why, "effects": effects}


def summarise(module, verdicts: dict[int, dict]) -> str:
    """The Markdown table: per finding, the seeds it held on; per effect, mean, min, max and each seed."""
    seeds = sorted(verdicts)
    lines = ["| finding | held on | failed on |", "|---|---|---|"]
    for name, (_, expected) in findings(module).items():
        ran = [s for s in seeds if name in verdicts[s]["held"]]
        failed = [s for s in ran if not verdicts[s]["held"][name]]
        note = "" if expected else " (marked: known not to hold)"
        lines.append(f"| `{name}`{note} | {len(ran) - len(failed)} of {len(ran)} | "
                     f"{', '.join(map(str, failed)) or '-'} |")
    broken = [s for s in seeds if "run" in verdicts[s]["why"]]
    if broken:
        lines.append(f"| the run itself (no results to judge) | {len(seeds) - len(broken)} of {len(seeds)} | "
                     f"{', '.join(map(str, broken))} |")
    labels = list(getattr(module, "EFFECTS", {}))
    if labels:
        lines += ["", "| effect | mean | min | max | " + " | ".join(f"seed {s}" for s in seeds) + " |",
                  "|---|---|---|---|" + "---|" * len(seeds)]
        for label in labels:
            values = {s: verdicts[s]["effects"][label] for s in seeds if label in verdicts[s]["effects"]}
            if not values:
                continue
            cells = " | ".join(f"{values[s]:.3g}" if s in values else "-" for s in seeds)
            v = list(values.values())
            lines.append(f"| {label} | {statistics.fmean(v):.3g} | {min(v):.3g} | {max(v):.3g} | {cells} |")
    return "\n".join(lines)


def sweep(name: str, seeds: list[int], profile: str = "ci", workers: int = 2, keep: Path | None = None) -> dict:
    """Run notebook ``name`` on each seed (``workers`` at a time) and judge each run: {seed: verdict}."""
    module = test_module(name)
    threads = max(1, (os.cpu_count() or 1) // workers)

    def verdict_of(seed, run):
        if "results" not in run:
            return {"held": {}, "why": {"run": run["error"][-300:] or "no results.json"}, "effects": {},
                    "seconds": run["seconds"]}
        verdict = judge(module, run["results"])
        if run["results"].get("seed", seed) != seed:
            verdict["why"]["run"] = f"the notebook ran seed {run['results'].get('seed')}, not {seed}"
            verdict["held"] = dict.fromkeys(verdict["held"], False)
        print(f"{name} seed {seed}: {sum(verdict['held'].values())} of {len(verdict['held'])} findings held "
              f"({run['seconds']} s)", file=sys.stderr)
        return verdict | {"seconds": run["seconds"], "peak_gib": run["peak_gib"]}

    # The workers only run notebooks (each in its own kernel); the runs are judged here, in the main thread,
    # one at a time: a finding that loads a model (transformers' loading is not thread-safe) would otherwise
    # fail in a worker thread while it holds in the test suite.
    verdicts = {}
    with ThreadPoolExecutor(workers) as pool:
        runs = {pool.submit(run_one, name, profile, {"seed": seed}, keep=keep / f"seed{seed}" if keep else None,
                            threads=threads): seed for seed in seeds}
        for done in as_completed(runs):
            verdicts[runs[done]] = verdict_of(runs[done], done.result())
    return verdicts


def rejudge(module, seeds: list[int], keep: Path, earlier: dict | None = None) -> dict:
    """Judge the runs a sweep kept under ``keep`` (``keep/seedN/out/results.json``) again with ``module``:
    {seed: verdict}, with each seed's seconds and peak from the ``earlier`` sweep's JSON, if given."""
    verdicts = {}
    for seed in seeds:
        path = keep / f"seed{seed}" / "out" / "results.json"
        if not path.exists():
            raise ValueError(f"No kept run of seed {seed} at {path}: run the sweep with --keep first.")
        cost = {k: (earlier or {}).get(str(seed), {}).get(k) for k in ("seconds", "peak_gib")}
        verdicts[seed] = judge(module, json.loads(path.read_text())) | cost
    return verdicts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", help="e.g. 06_peft_family")
    parser.add_argument("--seeds", default="1-10")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--keep", type=Path, help="keep every executed copy under this folder")
    parser.add_argument("--rejudge", type=Path, help="judge the runs kept in this folder again, without running")
    ns = parser.parse_args(argv)
    if not (NOTEBOOKS / f"{ns.notebook}.ipynb").exists():
        names = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
        parser.error(f"no notebook {ns.notebook!r}; choose one of {', '.join(names)}")
    seeds = parse_seeds(ns.seeds)
    if ns.rejudge:
        earlier = OUT / f"{ns.notebook}.json"
        verdicts = rejudge(test_module(ns.notebook), seeds, ns.rejudge,
                           json.loads(earlier.read_text()) if earlier.exists() else {})
    else:
        verdicts = sweep(ns.notebook, seeds, ns.profile, ns.workers, ns.keep)
    module = test_module(ns.notebook)
    table = summarise(module, verdicts)
    again = (" The runs were judged again (`--rejudge`) after tests changed; the test module says which and why."
             if ns.rejudge else "")
    header = (f"# {ns.notebook}: findings on world seeds {ns.seeds} ({ns.profile} profile)\n\n"
              f"Made by `python benchmarks/seeds.py {ns.notebook} --seeds {ns.seeds} --profile {ns.profile}`. "
              f"Each finding is a test of the notebook's test module, judging each seed's run.{again}\n\n")
    OUT.mkdir(exist_ok=True)
    (OUT / f"{ns.notebook}.md").write_text(header + table + "\n")
    (OUT / f"{ns.notebook}.json").write_text(json.dumps({str(s): v for s, v in verdicts.items()}, indent=1) + "\n")
    print(table)
    failures = [(s, n, w) for s, v in verdicts.items() for n, w in v["why"].items()]
    for seed, name, why in failures:
        print(f"seed {seed} {name}: {why}", file=sys.stderr)


if __name__ == "__main__":
    main()

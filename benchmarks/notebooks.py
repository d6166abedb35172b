"""Execute every notebook in a profile (default ci) and report wall time and peak memory.

    python benchmarks/notebooks.py [--profile ci] [--only 01_full_finetuning]

Each notebook runs in its own papermill process; its peak memory is the largest total, sampled
every 0.25 s, of the proportional set size (PSS: shared pages split between the processes sharing
them) of papermill, its kernel and every process the kernel starts. That total is what a 2 GB
container such as Binder's has to hold. Prints a Markdown table for the README.
Budget (ci): each notebook <= 120 s and <= 1.5 GB (1.40 GiB). Sizes are shown in GiB, the course's unit.
The same 2-core machine type runs at different speeds on different days (shared hosts), so the table
starts with this machine's speed: the seconds of one reference training step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BUDGET_S, BUDGET_GIB = 120, 1.5e9 / 2**30  # 1.5 GB, in GiB
# Per-cell limit, so a stuck cell (nbclient can wait forever after a widget is displayed) fails the run
# instead of hanging it. ci: as in tests/conftest.py, a whole notebook's budget is 120 s, so no healthy
# cell nears 300 s. cpu/gpu: a whole notebook takes up to ~30 min, so one cell gets an hour.
CELL_TIMEOUT_S = {"ci": 300, "cpu": 3600, "gpu": 3600}
KERNEL_START_TIMEOUT_S = 120


def tree_memory(root) -> int:
    """Summed PSS of ``root`` and all its descendants, in bytes (read from smaps_rollup, which is
    cheap; RSS where it cannot be read)."""
    import psutil

    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            with open(f"/proc/{proc.pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        except psutil.Error:
            pass
    return total


def reference_step_seconds(repeats: int = 5) -> float:
    """This machine's speed, so that run times measured on different days and machines can be
    compared: the median seconds of one full fine-tuning step (forward, backward, AdamW) of the course
    model on 16 record examples (~96 tokens each), with torch's default threads."""
    import statistics

    import torch

    import labkit as lk

    lk.quiet()
    model, tokenizer = lk.load_model()
    pairs = lk.finetuning.record_pairs(lk.world.make_world(0), 16, "benchmark")
    batch = tokenizer([f"{p} {a}" for p, a in pairs], return_tensors="pt", padding=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    times = []
    for i in range(repeats + 2):  # two warm-up steps
        start = time.perf_counter()
        model(**batch, labels=batch["input_ids"]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_one(name: str, profile: str, parameters: dict | None = None, keep: str | Path | None = None,
            threads: int | None = None) -> dict:
    """Run one notebook through the papermill CLI (a child process) and measure it.

    ``parameters``: more papermill parameters (e.g. ``{"seed": 3}``); ``keep``: a folder for the
    executed copy and its ``out/results.json`` (default: a temporary one, deleted); ``threads``: torch's
    threads in the kernel (default: all cores). The result holds ``results`` (the notebook's
    results.json) when the run wrote one.
    """
    import psutil

    env = {**os.environ, "LABKIT_HEADLESS": "1"}  # the kernel inherits it: labkit's widgets go headless
    if threads:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    args = [arg for key, value in (parameters or {}).items() for arg in ("-y", json.dumps({key: value}))]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "stderr", "w+") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "papermill", str(NOTEBOOKS / f"{name}.ipynb"),
                 str(folder / f"{name}.ipynb"), "-p", "profile", profile, "-p", "output_dir", str(folder / "out"),
                 *args, "-k", "python3", "--language", "python", "--cwd", str(NOTEBOOKS),
                 "--execution-timeout", str(CELL_TIMEOUT_S.get(profile, 3600)),
                 "--start-timeout", str(KERNEL_START_TIMEOUT_S),
                 "--no-progress-bar"], stdout=subprocess.DEVNULL, stderr=err, text=True, env=env)
            root, peak = psutil.Process(proc.pid), 0
            while proc.poll() is None:
                peak = max(peak, tree_memory(root))
                time.sleep(0.25)
            wall = time.perf_counter() - start
            err.seek(0)
            stderr = err.read()
        results = folder / "out" / "results.json"
        out = {"notebook": name, "ok": proc.returncode == 0, "seconds": round(wall, 1),
               "peak_gib": round(peak / 2**30, 2), "error": stderr[-2000:] if proc.returncode else ""}
        if results.exists():
            out["results"] = json.loads(results.read_text())
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--only", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one in this process
    parser.add_argument("--speed", action="store_true", help=argparse.SUPPRESS)  # internal: the reference step
    ns = parser.parse_args()
    if ns.speed:
        print(json.dumps(reference_step_seconds()))
        return
    if ns.one:
        print(json.dumps(run_one(ns.one, ns.profile)))
        return
    names = ns.only or sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    speed = json.loads(subprocess.run([sys.executable, __file__, "--speed"], capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1])
    rows = []
    for name in names:  # a fresh parent per notebook, so each peak is that notebook's own
        out = subprocess.run([sys.executable, __file__, "--profile", ns.profile, "--one", name],
                             capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        rows[-1].pop("results", None)
        print(f"{name}: {rows[-1]['seconds']} s, {rows[-1]['peak_gib']} GiB", file=sys.stderr)
    print(f"Machine speed: {speed:.2f} s per reference step (one full fine-tuning step of the course model on "
          "16 record examples; the slower the machine, the larger).\n")
    print(f"| notebook | {ns.profile} wall time (s) | peak memory (GiB) | within budget |")
    print("|---|---|---|---|")
    for r in rows:
        ok = r["ok"] and r["seconds"] <= BUDGET_S and r["peak_gib"] <= BUDGET_GIB
        status = "yes" if ok else ("FAILED" if not r["ok"] else "no")
        print(f"| {r['notebook']} | {r['seconds']} | {r['peak_gib']} | {status} |")
    for r in rows:
        if r["error"]:
            print(f"\n{r['notebook']} failed:\n{r['error']}", file=sys.stderr)
    sys.exit(0 if all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
    main()

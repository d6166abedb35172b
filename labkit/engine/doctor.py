"""The first-cell check: what this machine has for the course, in one short report (``lk.doctor()``).

Versions of the stack, the device (and whether it trains in bf16 or fp16), the profile a notebook
would pick here and its expected time, and what is missing, each with what to do. ``check`` returns
the facts (the tests call it); ``report`` words them.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import sys

STACK = ("torch", "transformers", "peft", "accelerate", "ipywidgets", "matplotlib")
# Optional parts: module -> (the notebooks that need it, how to get it).
OPTIONAL = {
    "bitsandbytes": ("04 (4-bit and 8-bit)", "pip install 'labkit[quant]' (or the [course] extra)"),
    "bm25s": ("05 (BM25 retrieval)", "pip install 'labkit[rag]'"),
    "sentence_transformers": ("05 (dense retrieval)", "pip install 'labkit[rag]'"),
    "papermill": ("the tests and benchmarks", "pip install 'labkit[dev]'"),
}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check(notebook: str | None = None, profile: str | None = None) -> dict:
    """The facts: python, stack versions, device, the profile (``profile``, else the one the machine
    picks) and the notebook's expected time in it, missing parts, and whether the course's base model is
    found."""
    import torch

    from labkit.core.settings import detect, get_profile
    from labkit.model.loading import ModelError, base_model_dir, half_precision

    device = {"kind": "cpu", "name": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        device = {"kind": "cuda", "name": torch.cuda.get_device_name(), "capability": f"{major}.{minor}",
                  "gib": torch.cuda.get_device_properties(0).total_memory / 2**30,
                  "mixed_precision": "bf16" if half_precision() == "bf16" else
                  "fp16 (with a loss scaler; bf16 is only emulated)"}
    chosen, profile = profile is not None, profile or detect()
    try:
        model, model_problem = base_model_dir(), None
        if not model.is_dir():
            model, model_problem = None, (f"{model} is missing: run from a clone of the course, or set LABKIT_DATA "
                                          "to its data/ folder")
    except ModelError as err:
        model, model_problem = None, str(err)
    missing = {m: OPTIONAL[m] for m in OPTIONAL if importlib.util.find_spec(m) is None}
    return {"python": platform.python_version(), "platform": sys.platform,
            "versions": {name: _version(name) for name in STACK}, "device": device, "profile": profile,
            "profile_given": chosen,
            "expected": get_profile(profile).expected_time(notebook) if notebook else None,
            "base_model": model and str(model), "base_model_problem": model_problem, "missing": missing}


def report(facts: dict, notebook: str | None = None) -> str:
    """``check``'s facts as a few lines for a notebook's first cell."""
    d = facts["device"]
    where = (f"GPU {d['name']} (compute capability {d['capability']}, {d['gib']:.1f} GiB; mixed precision: "
             f"{d['mixed_precision']})" if d["kind"] == "cuda" else f"CPU only ({d['threads']} threads)")
    lines = [f"Python {facts['python']} on {facts['platform']}; "
             + ", ".join(f"{k} {v or 'MISSING'}" for k, v in facts["versions"].items()),
             f"Device: {where}. Profile: {facts['profile']}"
             + (" (from the parameters)" if facts.get("profile_given") else " (picked from the machine)")
             + (f"; {notebook} takes {facts['expected']}" if notebook else "") + "."]
    lines.append(f"Course model: {facts['base_model']}" if facts["base_model"]
                 else f"Course model NOT FOUND: {facts['base_model_problem']}")
    for module, (needed_by, fix) in facts["missing"].items():
        lines.append(f"Missing {module} (needed by notebook {needed_by}): {fix}.")
    if not facts["missing"]:
        lines.append("Nothing optional is missing.")
    return "\n".join(lines)


def doctor(notebook: str | None = None, profile: str | None = None) -> dict:
    """Print the report for this machine (``notebook``: also its expected time in ``profile``, None:
    the one the machine picks) and return the facts."""
    facts = check(notebook, profile)
    print(report(facts, notebook))
    return facts

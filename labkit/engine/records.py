"""Run records and results files: one JSON row per run, one results file per notebook.
Tests read the results file; plots read rows. Introduced in notebook 01_full_finetuning.
"""

from __future__ import annotations

import json
import math
from pathlib import Path


def _clean(value):
    """JSON-safe: tensors and numpy scalars to floats, NaN refused (a finding must be a number)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("A finding is NaN or infinite: check the run before recording it.")
    return value


def check_results(findings: dict, schema: dict[str, type | tuple]) -> None:
    """Raise ValueError naming every key of ``schema`` that ``findings`` lacks or holds with the wrong
    type (``schema``: key -> type or tuple of types; ``float`` accepts ints, None is never accepted)."""
    problems = []
    for key, kind in schema.items():
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds:
            kinds = (*kinds, int)
        if key not in findings:
            problems.append(f"{key!r} is missing")
        elif not isinstance(findings[key], kinds) or (isinstance(findings[key], bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            problems.append(f"{key!r} is {type(findings[key]).__name__}, not {names}")
    if problems:
        raise ValueError("Results are incomplete, so they were not written: " + "; ".join(problems) + ".")


def save_results(out_dir: str | Path, notebook: str, findings: dict, schema: dict[str, type | tuple]) -> Path:
    """Check ``findings`` against the notebook's ``schema`` (see ``check_results``), then write them
    to OUT_DIR/results.json (the file the tests assert on). An incomplete result is never written."""
    findings = _clean(findings)
    check_results(findings, schema)
    path = Path(out_dir) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"notebook": notebook, **findings}, indent=2) + "\n")
    return path


def load_results(out_dir: str | Path) -> dict:
    return json.loads((Path(out_dir) / "results.json").read_text())


# One run record (a line of runs.jsonl), checked before it is written and when it is read.
RUN = {"run": str, "config": dict, "metrics": dict, "seconds": float, "peak_mib": float, "versions": dict}


def versions() -> dict:
    """The versions a run was made with: Python and the libraries that decide its numbers."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("torch", "transformers", "peft", "trl", "bitsandbytes", "labkit"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def record_run(out_dir: str | Path, name: str, config: dict, metrics: dict,
               seconds: float, peak_bytes: int) -> dict:
    """Append one run (config, metrics, time, peak memory and the library versions) as a JSON line to
    OUT_DIR/runs.jsonl, after checking it against ``RUN``."""
    row = _clean({"run": name, "config": config, "metrics": metrics,
                  "seconds": round(seconds, 2), "peak_mib": round(peak_bytes / 2**20, 1), "versions": versions()})
    check_results(row, RUN)
    path = Path(out_dir) / "runs.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def load_runs(out_dir: str | Path) -> list[dict]:
    """The run records of OUT_DIR/runs.jsonl, each checked against ``RUN`` (none: an empty list)."""
    path = Path(out_dir) / "runs.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    for i, row in enumerate(rows, 1):
        try:
            check_results(row, RUN)
        except ValueError as error:
            problem = str(error).split(": ", 1)[-1].rstrip(".")
            raise ValueError(f"{path}, line {i}, is not a run record this version of the course reads ({problem}). "
                             "Move the file away and run again to measure afresh.") from None
    return rows

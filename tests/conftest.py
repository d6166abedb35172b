import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Inherited by every notebook kernel: labkit's widgets run headless (no comm-backed ipywidgets), since
# nbclient can wait forever for a message after a cell displays a widget (jupyter/nbclient#312).
os.environ.setdefault("LABKIT_HEADLESS", "1")

# Per-cell limit. A whole ci notebook is budgeted at <= 120 s and takes ~2-3 min on 2 busy cores,
# so no healthy cell comes near 300 s; a stuck cell fails after 5 min instead of at CI's 90 min limit.
# Stays well below the per-test pytest-timeout (pyproject.toml) so the clear message below wins.
CELL_TIMEOUT_S = 300
# Kernel start-up limit (papermill's default is 60 s; an ipykernel starts in seconds, but give a loaded
# CI runner room).
KERNEL_START_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def base():
    """The shipped base model and its tokenizer (loaded once per test session)."""
    from labkit import load_model

    return load_model()


NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
_results: dict = {}


def _failed_cell(executed: Path) -> str:
    """``cell N (`its first line`)`` for the cell that failed in the executed copy, else for the last cell
    that started (the one running when a timeout or a dead kernel stopped execution). N is the cell's
    index in the source notebook: the cells papermill adds (injected parameters, error markers) are
    left out."""
    import nbformat

    try:
        cells = nbformat.read(str(executed), as_version=4).cells
    except Exception:  # no executed copy: papermill stopped before the first cell
        return "before any cell ran"
    added = {"injected-parameters", "papermill-error-cell-tag"}
    cells = [c for c in cells if not added & set(c.get("metadata", {}).get("tags", []))]
    state = [c.get("metadata", {}).get("papermill", {}) for c in cells]
    failed = [i for i, s in enumerate(state) if s.get("status") == "failed"]
    started = [i for i, s in enumerate(state) if s.get("start_time")]
    if not failed + started:
        return "before any cell ran"
    index = (failed or started)[-1]
    lines = cells[index].source.strip().splitlines()
    return f"cell {index} (`{lines[0] if lines else ''}`)"


def execute(path: Path, out_dir: Path, parameters: dict | None = None, timeout: float = CELL_TIMEOUT_S) -> dict:
    """Execute notebook ``path`` with papermill in the ci profile into ``out_dir``; return its results.json.

    Any failure (a cell raising, a cell running past ``timeout`` seconds, the kernel dying or not
    starting, no results.json written) fails the calling test with a message that names the notebook
    and, where one is to blame, the cell and its first line.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    path, out_dir = Path(path), Path(out_dir)
    executed, results = out_dir / path.name, out_dir / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(
            str(path), str(executed),
            parameters={"profile": "ci", "output_dir": str(results), **(parameters or {})},
            kernel_name="python3", language="python", cwd=str(path.parent), progress_bar=False,
            execution_timeout=timeout, start_timeout=KERNEL_START_TIMEOUT_S)
    except PapermillExecutionError as e:
        pytest.fail(f"{path.name}: {_failed_cell(executed)} raised {e.ename}: {e.evalue}\n"
                    f"(executed copy with the traceback: {executed})", pytrace=False)
    except TimeoutError as e:  # nbclient's CellTimeoutError: a cell ran past ``timeout``
        pytest.fail(f"{path.name}: {_failed_cell(executed)} timed out after {timeout} s "
                    f"({type(e).__name__}; executed copy: {executed})", pytrace=False)
    except Exception as e:  # DeadKernelError and anything else from the kernel or client
        pytest.fail(f"{path.name}: {_failed_cell(executed)} failed: {type(e).__name__}: {e}\n"
                    f"(executed copy: {executed})", pytrace=False)
    if not parameters:  # the default run: the copy a learner would see
        _executed[path.stem] = executed
    if not (results / "results.json").exists():
        pytest.fail(f"{path.name}: ran to the end without error but wrote no results.json into output_dir "
                    f"(a cell stopped it early, e.g. sys.exit(0)?; executed copy: {executed})", pytrace=False)
    return json.loads((results / "results.json").read_text())


_executed: dict[str, Path] = {}  # notebook name -> its executed copy (the default-parameter run)


def executed_notebook(name: str, tmp_path_factory) -> dict:
    """The executed copy (nbformat JSON) of notebook ``name``'s ci run (run once, shared with
    ``run_notebook``)."""
    run_notebook(name, tmp_path_factory)
    return json.loads(_executed[name].read_text())


def run_notebook(name: str, tmp_path_factory, timeout: float = CELL_TIMEOUT_S, **parameters) -> dict:
    """Run notebook ``name`` in the ci profile into a temporary folder; return its results.json.

    Runs are cached per (name, parameters) for the test session, so several tests can assert on one run;
    a failed run is cached too, so the tests sharing it fail at once instead of re-running (or re-hanging).
    ``timeout`` is the per-cell limit in seconds.
    """
    key = (name, tuple(sorted(parameters.items())))
    if key not in _results:
        try:
            _results[key] = execute(NOTEBOOKS / f"{name}.ipynb", tmp_path_factory.mktemp(name), parameters, timeout)
        except pytest.fail.Exception as e:
            _results[key] = e
    if isinstance(_results[key], pytest.fail.Exception):
        pytest.fail(str(_results[key].msg), pytrace=False)
    return _results[key]


def _tiny(tokenizer_version: int):
    import torch
    from transformers import LlamaForCausalLM

    from labkit.model.pretrain import PretrainConfig, model_config
    from labkit.model.tokenizer import build_tokenizer

    torch.manual_seed(0)
    tok = build_tokenizer(tokenizer_version)
    return LlamaForCausalLM(model_config(tok, PretrainConfig(hidden=32, layers=2, heads=2))), tok


@pytest.fixture
def tiny():
    """A tiny Llama with the course tokenizer's vocabulary (random weights, seeded) and that tokenizer."""
    return _tiny(1)


@pytest.fixture
def tiny_v2():
    """The same with tokenizer version 2 (its chat template marks the assistant's turns for SFT)."""
    return _tiny(2)


def assert_matches_card(measured: dict, card: dict, keys, tolerance: float) -> None:
    """Each of ``keys`` in ``measured`` is the card's value within ``tolerance`` (absolute for
    accuracies, relative for perplexity)."""
    for key in keys:
        scale = card[key] if key == "perplexity" else 1
        assert abs(measured[key] - card[key]) <= tolerance * scale, (key, measured[key], card[key])

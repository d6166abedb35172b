import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def base():
    """The shipped base model and its tokenizer (loaded once per test session)."""
    from labkit import load_model

    return load_model()


NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
_results: dict = {}


def run_notebook(name: str, tmp_path_factory, **parameters) -> dict:
    """Run notebook ``name`` in the ci profile into a temporary folder; return its results.json.

    Runs are cached per (name, parameters) for the test session, so several tests can assert on one run.
    """
    key = (name, tuple(sorted(parameters.items())))
    if key not in _results:
        import papermill as pm

        out = tmp_path_factory.mktemp(name)
        pm.execute_notebook(
            str(NOTEBOOKS / f"{name}.ipynb"), str(out / f"{name}.ipynb"),
            parameters={"profile": "ci", "output_dir": str(out / "results"), **parameters},
            kernel_name="python3", language="python", cwd=str(NOTEBOOKS), progress_bar=False)
        _results[key] = json.loads((out / "results" / "results.json").read_text())
    return _results[key]


@pytest.fixture
def tiny():
    """A tiny Llama with the course tokenizer's vocabulary (random weights, seeded) and that tokenizer."""
    import torch
    from transformers import LlamaForCausalLM

    from labkit.model.pretrain import PretrainConfig, model_config
    from labkit.model.tokenizer import build_tokenizer

    torch.manual_seed(0)
    tok = build_tokenizer()
    return LlamaForCausalLM(model_config(tok, PretrainConfig(hidden=32, layers=2, heads=2))), tok

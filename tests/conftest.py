import os

import pytest

os.environ.setdefault("MPLBACKEND", "agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def base():
    """The shipped base model and its tokenizer (loaded once per test session)."""
    from labkit import load_model

    return load_model()

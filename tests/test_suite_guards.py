"""The notebook helper in conftest fails fast, and says which notebook and cell, instead of hanging."""

import time

import conftest
import nbformat
import pytest
from conftest import execute


def write_notebook(folder, name, *sources):
    """A notebook with a parameters cell (profile, output_dir) followed by one code cell per source."""
    params = nbformat.v4.new_code_cell('profile = None\noutput_dir = "results"')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, *map(nbformat.v4.new_code_cell, sources)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


RESULTS = ("import json, pathlib\n"
           "pathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)\n"
           "(pathlib.Path(output_dir) / 'results.json').write_text(json.dumps({'profile': profile}))")


def test_a_healthy_notebook_returns_its_results(tmp_path):
    path = write_notebook(tmp_path, "healthy", "x = 1", RESULTS)
    assert execute(path, tmp_path / "out", timeout=30) == {"profile": "ci"}


def test_a_stuck_cell_fails_fast_naming_notebook_and_cell(tmp_path):
    path = write_notebook(tmp_path, "stuck", "x = 1", "import time; time.sleep(60)", RESULTS)
    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception) as failed:
        execute(path, tmp_path / "out", timeout=3)
    assert time.monotonic() - start < 30
    message = str(failed.value)
    assert "stuck.ipynb" in message and "cell 2 (`import time; time.sleep(60)`)" in message
    assert "timed out after 3 s" in message


def test_a_raising_cell_fails_naming_notebook_and_cell(tmp_path):
    path = write_notebook(tmp_path, "raising", "x = 1", "# the bad one\nraise ValueError('boom')", RESULTS)
    with pytest.raises(pytest.fail.Exception) as failed:
        execute(path, tmp_path / "out", timeout=30)
    message = str(failed.value)
    assert "raising.ipynb" in message and "cell 2 (`# the bad one`)" in message
    assert "ValueError: boom" in message


def test_a_notebook_that_stops_early_without_results_fails(tmp_path):
    # papermill treats SystemExit(0) as success and skips the remaining cells.
    path = write_notebook(tmp_path, "early_exit", "import sys; sys.exit(0)", RESULTS)
    with pytest.raises(pytest.fail.Exception) as failed:
        execute(path, tmp_path / "out", timeout=30)
    message = str(failed.value)
    assert "early_exit.ipynb" in message and "no results.json" in message


def test_a_failed_run_is_cached_so_tests_sharing_it_fail_at_once(tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.setattr(conftest, "NOTEBOOKS", tmp_path)
    monkeypatch.setattr(conftest, "_results", {})
    write_notebook(tmp_path, "broken", "raise ValueError('boom')")
    messages = []
    for _ in range(2):
        start = time.monotonic()
        with pytest.raises(pytest.fail.Exception) as failed:
            conftest.run_notebook("broken", tmp_path_factory, timeout=30)
        messages.append(str(failed.value))
    assert time.monotonic() - start < 0.5  # the second call did not start a kernel
    assert messages[0] == messages[1] and "broken.ipynb: cell 1" in messages[0]

"""The install cell every notebook opens with (Colab): one cell for the whole course, a pinned release,
safe to run again (after a kernel restart, or twice)."""

import json
import os
import sys
import tomllib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def install_cell(path: Path) -> str:
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    return "".join(cells[0]["source"])


def test_every_notebook_opens_with_the_same_install_cell():
    first = install_cell(NOTEBOOKS[0])
    assert "google.colab" in first
    for path in NOTEBOOKS[1:]:
        assert install_cell(path) == first, f"{path.name}: its install cell differs from {NOTEBOOKS[0].name}'s"


def test_the_cell_installs_this_versions_release_with_the_course_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    cell = install_cell(NOTEBOOKS[0])
    assert f'"v{project["version"]}"' in cell  # the release tag of the version the notebook belongs to
    assert "[course]" in cell and "course" in project["optional-dependencies"]
    assert '"main"' not in cell  # a branch moves; a notebook must get the code it was written for


def test_running_the_cell_twice_clones_and_installs_once(tmp_path, monkeypatch):
    calls = []
    course_dir = tmp_path / "course"

    def fake_run(cmd, check=False):
        calls.append(cmd[0] if cmd[0] == "git" else cmd[2])
        if cmd[0] == "git":
            (course_dir / "notebooks").mkdir(parents=True)
        else:  # pip install: the package becomes importable
            monkeypatch.setitem(sys.modules, "labkit", types.ModuleType("labkit"))

    source = install_cell(NOTEBOOKS[0]).replace('"/content/llm-finetuning-lab"', repr(str(course_dir)))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setitem(sys.modules, "labkit", None)  # not installed yet: importing it raises ImportError
    monkeypatch.setattr("subprocess.run", fake_run)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LABKIT_DATA", "before")  # recorded, so what the cell sets is undone after the test
    for _ in range(2):  # a second run (e.g. after a restart) must neither clone nor install again
        exec(compile(source, "install-cell", "exec"), {})
        assert Path.cwd() == course_dir / "notebooks"
        assert os.environ["LABKIT_DATA"] == f"{course_dir}/data"
    assert calls == ["git", "pip"]


def test_outside_colab_the_cell_does_nothing(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr("subprocess.run", lambda *a, **k: pytest.fail("ran a command outside Colab"))
    monkeypatch.chdir(tmp_path)
    exec(compile(install_cell(NOTEBOOKS[0]), "install-cell", "exec"), {})
    assert Path.cwd() == tmp_path

"""The course on a fresh machine, one command each (Python 3.11+, nothing else needed first):

    python course.py lab                  # install what is missing, then open JupyterLab on the notebooks
    python course.py test                 # install what is missing, then run the test suite
    python course.py report --profile cpu # install what is missing, then run every notebook headless and
                                          # write reports/course-cpu.md and .json (time, memory, findings)

What is missing is installed into a virtual environment, ``.venv`` beside this file, from
requirements.txt (CPU torch, pinned); it is installed again only when requirements.txt or
pyproject.toml change. ``--here`` uses the Python running this script instead of ``.venv``.
Only the standard library is used here, so it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"


def venv_python(folder: Path | None = None) -> Path:
    folder = folder or VENV
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def requirements_digest() -> str:
    """What the installed environment must match: requirements.txt and pyproject.toml."""
    h = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def ensure_installed(python: Path | None) -> Path:
    """The Python to run the course with, its requirements installed (into ``.venv`` unless ``python``
    is given): creates the environment if absent, installs when the requirements changed."""
    if python is None:
        python = venv_python()
        if not python.exists():
            print(f"Creating a virtual environment in {VENV.name}/ ...", flush=True)
            venv.EnvBuilder(with_pip=True).create(VENV)
        stamp = VENV / ".course-installed"
    else:
        stamp = ROOT / ".course-installed-here"
    if not stamp.exists() or stamp.read_text() != requirements_digest():
        print("Installing the course's requirements (first time: a few minutes) ...", flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", "requirements.txt"], cwd=ROOT, check=True)
        stamp.write_text(requirements_digest())
    return python


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("lab", "test", "report"))
    parser.add_argument("--here", action="store_true", help="install into and run with this Python, not .venv")
    parser.add_argument("--profile", default="ci", choices=("ci", "cpu", "gpu"), help="report: the profile")
    ns, rest = parser.parse_known_args(argv)
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be started by an older Python
        parser.error(f"the course needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    python = ensure_installed(Path(sys.executable) if ns.here else None)
    commands = {"lab": ["-m", "jupyter", "lab", "notebooks"], "test": ["-m", "pytest", *rest],
                "report": ["benchmarks/report.py", "--profile", ns.profile, *rest]}
    return subprocess.run([str(python), *commands[ns.command]], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())

"""Widgets are thin shells: headless they call the pure function once with its defaults and build
nothing; live they are ipywidgets whose controls start at those defaults and call the function."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import widgets

# Colab ships ipywidgets 7.7 (the test environment has 8): this file runs again against 7.7.1.
IPYWIDGETS_7 = ["ipywidgets==7.7.1", "widgetsnbextension~=3.6.0", "jupyterlab-widgets~=1.0", "ipython_genutils"]


def test_headless_draws_once_with_the_defaults_and_builds_no_widget(monkeypatch):
    monkeypatch.setenv("LABKIT_HEADLESS", "1")
    calls = []

    def show(x=3, flag=True):
        calls.append((x, flag))

    assert widgets.interact(show, x=(1, 10, 1), flag=True) is None
    assert calls == [(3, True)]


def test_live_widget_starts_at_the_defaults_and_calls_the_function(monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    monkeypatch.setenv("LABKIT_HEADLESS", "0")
    calls = []

    def show(x=3, kind="b"):
        calls.append((x, kind))

    w = widgets.interact(show, x=(1, 10, 1), kind=["a", "b", "c"])
    assert isinstance(w, ipywidgets.interactive)
    assert w.kwargs == {"x": 3, "kind": "b"}
    assert calls == [(3, "b")]  # drawn once at the defaults, before any change (ipywidgets 7 waits for one)
    w.children[1].value = "c"
    assert calls[-1] == (3, "c")


@pytest.mark.parametrize("build", [widgets.memory_calculator, widgets.adapter_explorer])
def test_course_widgets_build_live_and_run_headless(build, monkeypatch, capsys):
    pytest.importorskip("ipywidgets")
    monkeypatch.setenv("LABKIT_HEADLESS", "0")
    assert build().children
    monkeypatch.setenv("LABKIT_HEADLESS", "1")
    assert build() is None
    assert capsys.readouterr().out.strip()  # it printed its verdict or budget once


def test_memory_calculator_draws_a_whole_figure_every_time(monkeypatch):
    # Seen in a browser: after another cell had drawn, the calculator sent a blank image or bare bars.
    # Drive the live widget several times with other figures drawn in between; every figure it shows
    # must be its own, with its bars summing to the total its sentence states, labelled, with a key.
    pytest.importorskip("ipywidgets")
    import IPython.display
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from labkit.topics.qlora import estimate

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    monkeypatch.setenv("LABKIT_HEADLESS", "0")
    w = widgets.memory_calculator()
    controls = {c.description: c for c in w.children if hasattr(c, "description")}
    settings = [("Llama-2-70B", "full", 4096), ("Llama-2-7B", "qlora", 256), ("SmolLM2-135M", "lora", 2048)]
    figures = []
    for model, method, seq_len in settings:
        plt.figure()
        plt.plot([0, 1], [1, 0])  # another cell's figure, left open in pyplot's state
        controls["model"].value, controls["method"].value, controls["seq_len"].value = model, method, seq_len
        figures.append(shown[-1])  # each control redraws; the last figure shows all three settings
    assert len({id(f) for f in figures}) == len(settings)  # a new figure each time
    for fig, (model, method, seq_len) in zip(figures, settings):
        ax = fig.axes[0]
        total = estimate.calculator(model, method, 1, seq_len, True, "T4 16 GB")["total_gib"]
        widths = sum(p.get_width() for p in ax.patches)
        assert widths == pytest.approx(total, rel=1e-6), (model, widths, total)
        assert ax.get_xlabel().startswith("GiB") and ax.get_legend() is not None and model in ax.get_title()
        canvas = FigureCanvasAgg(fig)  # the widget closed it in pyplot after showing it: draw it again here
        canvas.draw()
        pixels = np.asarray(canvas.buffer_rgba())
        assert len(np.unique(pixels.reshape(-1, 4), axis=0)) > 20  # drawn, not a blank canvas
    plt.close("all")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("LABKIT_IPYWIDGETS_7") == "1", reason="this is the run on ipywidgets 7.7")
def test_this_file_passes_on_ipywidgets_7_7_as_on_colab(tmp_path):
    """Installs ipywidgets 7.7.1 beside the environment (pip --target, from the package index) and runs
    this file again with it first on the path."""
    target = tmp_path / "ipywidgets7"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                          *IPYWIDGETS_7], capture_output=True, text=True)
    assert pip.returncode == 0, f"could not install ipywidgets 7.7.1 from the package index: {pip.stderr[-500:]}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]),
           "LABKIT_IPYWIDGETS_7": "1"}
    version = subprocess.run([sys.executable, "-c", "import ipywidgets; print(ipywidgets.__version__)"],
                             capture_output=True, text=True, env=env).stdout.strip()
    assert version == "7.7.1"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
                         capture_output=True, text=True, env=env, cwd=Path(__file__).parent)
    assert run.returncode == 0, run.stdout[-3000:]


def test_strategy_advisor_builds_live_and_moves_with_its_controls(monkeypatch):
    pytest.importorskip("ipywidgets")
    from test_strategy import table

    from labkit.topics import strategy

    calls = []
    advise = strategy.advise
    monkeypatch.setattr(strategy, "advise", lambda *a, **k: calls.append((a[1], k)) or advise(*a, **k))
    monkeypatch.setenv("LABKIT_HEADLESS", "0")
    w = widgets.strategy_advisor(table())
    assert calls[-1][0] == "new facts" and calls[-1][1]["memory_gib"] == 16.0 and not calls[-1][1]["fresh"]
    controls = {c.description: c for c in w.children if hasattr(c, "description")}
    controls["fresh"].value = True
    assert calls[-1][0] == "new facts" and calls[-1][1]["fresh"]
    controls["task"].value = "output format"
    assert calls[-1][0] == "output format"
    controls["memory_gib"].value = 80.0
    assert calls[-1][1]["memory_gib"] == 80.0 and len(calls) == 4  # drawn once, then once per change

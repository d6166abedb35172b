"""Widgets are thin shells: headless they call the pure function once with its defaults and build
nothing; live they are ipywidgets whose controls start at those defaults and call the function."""

import pytest

from labkit import widgets


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

import pytest

from labkit import callbacks, train


class CountingProbe(callbacks.Probe):
    def metrics(self, model):
        return {"training": model.training}


def test_probe_measures_at_zero_and_every_n_steps_in_eval_mode(tiny, tmp_path):
    model, tok = tiny
    probe = CountingProbe(every=2)
    train.fit(model, tok, [("Q : a ? A :", "b")] * 4, out_dir=str(tmp_path), steps=5, batch_size=2, lr=1e-3,
              callbacks=[probe], progress=False)
    assert [r["step"] for r in probe.rows] == [0, 2, 4]
    assert not any(r["training"] for r in probe.rows)  # measured in eval mode ...


def test_probe_restores_training_mode_and_reuses_an_initial_row(tiny):
    model, _ = tiny
    model.train()
    probe = CountingProbe(every=1, initial={"step": 0, "training": False})
    probe.measure(model, 3)
    assert model.training  # ... and training resumes in training mode
    assert [r["step"] for r in probe.rows] == [0, 3]


def test_probe_rejects_a_zero_period():
    with pytest.raises(ValueError, match="every N >= 1"):
        CountingProbe(every=0)


def test_in_jupyter_the_bar_shows_without_an_empty_loss_table(tiny, tmp_path, monkeypatch):
    """In a notebook the Trainer shows an HTML bar and a loss table; the course keeps only the bar."""
    import transformers.trainer
    from transformers.utils import notebook

    from labkit.engine import train

    monkeypatch.setattr(transformers.trainer, "DEFAULT_PROGRESS_CALLBACK", notebook.NotebookProgressCallback)
    shown = []
    monkeypatch.setattr(notebook.NotebookTrainingTracker, "display",
                        lambda self: shown.append(notebook.html_progress_bar(self.value, self.total, self.prefix,
                                                                             self.label, self.width)
                                                  + (notebook.text_to_html_table(self.inner_table)
                                                     if self.inner_table is not None else "")))
    model, tok = tiny
    pairs = [("Q : a ?", "b")] * 4
    t = train.trainer(model, tok, pairs, eval_data=pairs, out_dir=str(tmp_path), steps=2, batch_size=2,
                      eval_every=1)
    t.train()
    assert shown and "<progress" in shown[-1]
    assert not any("<table" in html for html in shown), shown[-1]


def test_progress_yields_every_item_and_fills_the_bar(monkeypatch):
    from labkit.engine import callbacks

    assert list(callbacks.progress(iter("abc"), "runs")) == ["a", "b", "c"]  # a script: tqdm's text bar
    shown = []

    class Bar:  # stands in for the HTML bar that Jupyter would display
        def __init__(self, total, prefix):
            shown.append(("total", total, prefix))

        def update(self, value, force_update=False):
            shown.append(value)

    monkeypatch.setattr(callbacks, "is_in_notebook", lambda: True)
    monkeypatch.setattr(callbacks, "NotebookProgressBar", Bar)
    assert list(callbacks.progress(iter("abc"), "runs")) == ["a", "b", "c"]
    assert shown == [("total", 3, "runs"), 0, 1, 2, 3]

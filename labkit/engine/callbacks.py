"""Trainer callbacks: measurements during training (``Probe``), loss history, peak memory, a
progress bar without the metric dictionaries, and the same bar over any loop (``progress``).
Live drawing is a view (``labkit.live``).
Introduced in notebook 01_full_finetuning.
"""

from __future__ import annotations

import time

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback
from transformers.utils import is_in_notebook
from transformers.utils.notebook import NotebookProgressBar, NotebookProgressCallback, NotebookTrainingTracker

from labkit.engine import memory


class BarOnly(ProgressCallback):
    """The Trainer's progress bar, without the metric dictionaries it prints at each log (the live
    plot and the notebook's own lines show the numbers)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


class NotebookBarOnly(NotebookProgressCallback):
    """The same in Jupyter: the Trainer's HTML progress bar without its loss table (which stays
    empty when the loss is shown elsewhere, and would be printed after every run)."""

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        self.training_tracker = NotebookTrainingTracker(state.max_steps, column_names=None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.prediction_bar is not None:
            self.prediction_bar.close()
        self.prediction_bar = None
        self._force_next_update = True


def progress(items, desc: str):
    """Yield ``items`` under a progress bar (a sweep of runs, say): in Jupyter the Trainer's own HTML
    bar, which is no widget, so a client executing the notebook never waits on one; elsewhere tqdm's."""
    items = list(items)
    if not is_in_notebook():
        from tqdm import tqdm

        yield from tqdm(items, desc=desc)
        return
    bar = NotebookProgressBar(len(items), prefix=desc)
    bar.update(0)
    for done, item in enumerate(items, 1):
        yield item
        bar.update(done, force_update=True)


class Probe(TrainerCallback):
    """Measures the model at step 0 and every ``every`` steps; one row per measurement in ``rows``.
    Subclasses say what to measure in ``metrics(model) -> dict``. Runs that start from the same
    model can pass the step-0 row as ``initial`` instead of measuring it again."""

    def __init__(self, every: int, initial: dict | None = None):
        if every < 1:
            raise ValueError(f"A probe measures every N >= 1 steps, got {every}.")
        self.every = every
        self.rows: list[dict] = [dict(initial)] if initial else []

    def metrics(self, model) -> dict:
        raise NotImplementedError

    def measure(self, model, step: int) -> dict:
        """Measure now (in eval mode, restoring the training mode after) and keep the row."""
        was_training = model.training
        model.eval()
        row = {"step": step, **self.metrics(model)}
        model.train(was_training)
        self.rows.append(row)
        return row

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not self.rows:
            self.measure(model, 0)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self.measure(model, state.global_step)


class LossHistory(TrainerCallback):
    """Collects (step, loss) for training and validation as the Trainer logs them
    (``labkit.live.LossPlot`` draws them live in a notebook)."""

    def __init__(self):
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.train.append((state.global_step, float(logs["loss"])))
        if "eval_loss" in logs:
            self.val.append((state.global_step, float(logs["eval_loss"])))
            self.on_validation()

    def on_validation(self):
        """Called after each new validation loss (a hook for live views)."""


class PeakMemory(TrainerCallback):
    """Peak memory (bytes) and wall time of the training run it is attached to."""

    def __init__(self):
        self.peak = 0
        self.seconds = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        memory.reset_peak()
        self._start = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.peak = memory.peak_bytes()
        self.seconds = time.perf_counter() - self._start

"""Trainer callbacks: a live loss plot (train and validation) and peak-memory tracking.
Introduced in notebook 01_full_finetuning.
"""

from __future__ import annotations

import time

from transformers import TrainerCallback

from labkit.engine import memory


def in_notebook() -> bool:
    """True inside a Jupyter kernel (live output possible), False in scripts and tests."""
    try:
        from IPython import get_ipython

        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except ImportError:
        return False


class LossHistory(TrainerCallback):
    """Collects (step, loss) for training and validation; redraws a live plot in a notebook."""

    def __init__(self, title: str = "loss", live: bool | None = None, log: bool = True):
        self.title, self.log = title, log
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self.live = in_notebook() if live is None else live
        self._handle = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.train.append((state.global_step, float(logs["loss"])))
        if "eval_loss" in logs:
            self.val.append((state.global_step, float(logs["eval_loss"])))
            self._draw()

    def _draw(self):
        if not self.live:
            return
        import matplotlib.pyplot as plt
        from IPython.display import display

        from labkit.views.plots.training import loss_curves

        fig = loss_curves(self.train, self.val, title=self.title, log=self.log)
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)


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

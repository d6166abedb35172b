"""Live views during training: the loss curve redrawn in place at each validation.
Introduced in notebook 01_full_finetuning.
"""

from __future__ import annotations

from transformers.utils import is_in_notebook

from labkit.engine.callbacks import LossHistory


class LossPlot(LossHistory):
    """A ``LossHistory`` that redraws its training and validation curves in place in a notebook
    (elsewhere it only collects them)."""

    def __init__(self, title: str = "loss", log: bool = True, live: bool | None = None):
        super().__init__()
        self.title, self.log = title, log
        self.live = is_in_notebook() if live is None else live  # the Trainer's own test, as its bars use
        self._handle = None

    def on_validation(self):
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

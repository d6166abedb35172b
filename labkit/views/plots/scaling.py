"""Plots of notebook 12_scaling_out: loss curves of runs that should (and should not) be the same
training. They return figures and never save them."""

from __future__ import annotations


def loss_curves(curves: dict[str, list[float]], different: tuple[str, ...] = ()):
    """The training loss at every step of each run; runs named in ``different`` are drawn dashed
    (the control: a run that is not the same training)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4))
    styles = iter([("-", 5.0), ("--", 3.0), (":", 2.0), ("-.", 1.5)])
    for label, losses in curves.items():
        steps = range(1, len(losses) + 1)
        if label in different:
            ax.plot(steps, losses, "x--", color="grey", label=label)
        else:
            line, width = next(styles)
            ax.plot(steps, losses, line, linewidth=width, alpha=0.8, label=label)
    ax.set(xlabel="optimiser step", ylabel="training loss", yscale="log",
           title="Same global batch, same training: the curves lie on top of each other")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

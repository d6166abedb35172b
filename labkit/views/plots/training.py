"""Plots: each returns a matplotlib figure and never saves it (the notebook decides).
Introduced in notebook 01_full_finetuning.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from labkit.engine.capabilities import headline


def loss_curves(train, val, title: str = "loss", best_step: int | None = None, log: bool = False):
    """Training and validation loss against step; ``train``/``val`` are (step, loss) lists."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if log:
        ax.set_yscale("log")
    if train:
        ax.plot(*zip(*train), label="train", color="tab:blue", alpha=0.8)
    if val:
        ax.plot(*zip(*val), "o-", label="validation", color="tab:orange")
    if best_step is not None:
        ax.axvline(best_step, color="grey", ls="--", label=f"best (step {best_step})")
    ax.set(xlabel="step", ylabel="loss (nats/token)", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def before_after(metrics: dict[str, tuple[float, ...]], title: str = "before vs after",
                 labels: tuple[str, ...] = ("before", "after")):
    """Grouped bars: for each metric name, one bar per entry of its tuple (named by ``labels``: before and
    after, or more stages)."""
    fig, ax = plt.subplots(figsize=(6 + 0.6 * max(0, len(labels) - 2), 3.5))
    names = list(metrics)
    width = 0.8 / len(labels)
    for k, label in enumerate(labels):
        dx = (k - (len(labels) - 1) / 2) * width
        values = [metrics[n][k] for n in names]
        ax.bar([x + dx for x in range(len(names))], values, width, label=label)
        for x, v in enumerate(values):
            ax.text(x + dx, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(range(len(names))), names)
    ax.set(ylim=(0, 1.1), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def capability_bars(capabilities: dict, card: dict | None = None, title: str = "capabilities"):
    """Accuracy-type capabilities as bars (their breakdowns left to the printed table), with the card's
    bars drawn as ticks when given."""
    capabilities = headline(capabilities)
    keys = [k for k, v in capabilities.items() if k != "perplexity" and 0 <= v <= 1]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(keys, [capabilities[k] for k in keys], color="tab:green")
    for i, k in enumerate(keys):
        ax.text(i, capabilities[k] + 0.01, f"{capabilities[k]:.2f}", ha="center", fontsize=8)
    if card:
        for i, k in enumerate(keys):
            if k in card:
                ax.plot([i - 0.4, i + 0.4], [card[k]] * 2, color="black", lw=1)
    ax.set(ylim=(0, 1.1), title=title, ylabel="exact match")
    plt.setp(ax.get_xticklabels(), rotation=40, ha="right")
    fig.tight_layout()
    return fig

"""Plots of notebook 07_instruction_tuning: scores per instruction kind for each way of asking, and
the learning curve over training-set sizes."""

from __future__ import annotations


def kind_bars(settings: dict[str, dict], kinds: list[str], heldout: tuple[str, ...] = ()):
    """Grouped bars: one group per instruction kind, one bar per setting (``{setting: scores by kind}``);
    the held-out kinds' labels are marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / len(settings)
    for i, ((name, scores), colour) in enumerate(zip(settings.items(), plt.cm.Set2.colors)):
        xs = [k + (i - (len(settings) - 1) / 2) * width for k in range(len(kinds))]
        ax.bar(xs, [scores.get(kind, 0.0) for kind in kinds], width, color=colour, label=name)
    ax.set_xticks(range(len(kinds)), [f"{k}\n(held out)" if k in heldout else k for k in kinds], fontsize=8)
    if heldout:
        first = min(kinds.index(k) for k in heldout if k in kinds)
        ax.axvline(first - 0.5, color="grey", ls=":")
    ax.set(ylabel="score (exact match or fact/name F1)", ylim=(0, 1.05),
           title="Each instruction kind, asked three ways")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def learning_curve(sizes: list[int], seen: list[float], heldout: list[float], zero_shot: dict | None = None):
    """Score on the seen and the held-out kinds against the number of training examples (log x); the
    base model's zero-shot scores as dotted lines."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(sizes, seen, "o-", color="tab:blue", label="seen kinds, tuned")
    ax.plot(sizes, heldout, "s-", color="tab:orange", label="held-out kinds, tuned")
    for key, colour in (("seen", "tab:blue"), ("heldout", "tab:orange")):
        if zero_shot and key in zero_shot:
            ax.axhline(zero_shot[key], color=colour, ls=":", label=f"{key.replace('heldout', 'held-out')} kinds, "
                                                                   "base model zero-shot")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.xaxis.set_minor_locator(NullLocator())  # only the sizes run, no 3x10^1 between them
    ax.set(xlabel="training examples (log scale; the same number of steps for each)", ylabel="mean score per kind",
           ylim=(0, 1.05), title="Learning curve")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

"""Plots of notebook 09_task_heads: the learning curve of a head on a pretrained and on a random body,
and every setup's score on each task."""

from __future__ import annotations


def learning_curve(sizes: list[int], curves: dict[str, list[float]], chance: float | None = None,
                   metric: str = "accuracy", title: str = "How much pretraining buys, by the number of labels",
                   chance_label: str = "chance (the commonest class)",
                   xlabel: str = "labelled training examples (log scale; the same steps for each)"):
    """``metric`` against the number of training examples (log x), one line per setup (``{label: scores}``,
    a body in notebook 09); ``chance`` (always answering the commonest class) as a dotted line."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (label, scores), marker in zip(curves.items(), "os^D"):
        ax.plot(sizes[: len(scores)], scores, f"{marker}-", label=label)
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", label=chance_label)
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set(xlabel=xlabel, ylabel=metric, ylim=(0, 1.05), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def setups(scores: dict[str, dict[str, float]], metrics: dict[str, str]):
    """One panel per task (``{task: {setup: score}}``), a horizontal bar per setup, labelled with its
    score; ``metrics`` names each task's score. A setup named with "random" is a random body, one with
    "writes" the decoder writing the answer; the others are heads on a pretrained body."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    kinds = {"a head on a pretrained body": "tab:blue", "a head on a random body": "tab:grey",
             "the decoder writing it": "tab:orange"}

    def colour(name):
        return kinds["a head on a random body" if "random" in name else
                     "the decoder writing it" if "writes" in name else "a head on a pretrained body"]

    heights = [max(len(s), 1) for s in scores.values()]
    fig, axes = plt.subplots(len(scores), 1, figsize=(7.5, 1.2 + 0.32 * sum(heights) + 0.5 * len(scores)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (task, rows) in zip(axes[:, 0], scores.items()):
        names = list(rows)[::-1]
        values = [rows[n] for n in names]
        ax.barh(names, values, color=[colour(n) for n in names])
        for y, v in enumerate(values):
            ax.text(v + 0.01, y, f"{v:.2f}", va="center", fontsize=8)
        ax.set(xlim=(0, 1.12), title=f"{task}: {metrics[task]}")
        ax.tick_params(axis="y", labelsize=8)
    axes[-1, 0].set_xlabel("score on the test people")
    fig.legend(handles=[Patch(color=c, label=k) for k, c in kinds.items()], loc="lower center", ncol=3, fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig

"""Plots of notebook 13_choosing_a_strategy: the measured table, and quality against training cost."""

from __future__ import annotations


def table(cells: list[dict], tasks, strategies):
    """Tasks (rows) against strategies (columns): each measured cell shows its quality, coloured by how
    close it came to the task's best (1: the best; 0: the task's worst), since tasks are scored on
    different metrics (a perplexity on a log scale); a strategy that does not apply to a task is a grey
    dash."""
    import math

    import matplotlib.pyplot as plt
    import numpy as np

    from labkit.topics.strategy import METRICS

    def shade_of(task, q):  # higher is better; perplexities spread over orders of magnitude
        return q if METRICS[task][1] else -math.log10(q)

    shade = np.full((len(tasks), len(strategies)), np.nan)
    fig, ax = plt.subplots(figsize=(11, 0.75 * len(tasks) + 1.6))
    for i, task in enumerate(tasks):
        row = {c["strategy"]: c for c in cells if c["task"] == task}
        if not row:
            continue
        scores = [shade_of(task, c["quality"]) for c in row.values()]
        lo, hi = min(scores), max(scores)
        for j, s in enumerate(strategies):
            if s in row:
                q = row[s]["quality"]
                shade[i, j] = 1.0 if hi == lo else (shade_of(task, q) - lo) / (hi - lo)
                ax.text(j, i, f"{q:.3g}" if abs(q) >= 1000 else f"{q:.2f}", ha="center", va="center", fontsize=9,
                        color="white" if shade[i, j] < 0.35 else "black")
            else:
                ax.text(j, i, "-", ha="center", va="center", color="grey")
    image = ax.imshow(np.ma.masked_invalid(shade), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(strategies)), [s.replace(" ", "\n", 1) for s in strategies], fontsize=8)
    ax.set_yticks(range(len(tasks)), [f"{t}\n({METRICS[t][0]}{'' if METRICS[t][1] else ', lower is better'})"
                                      for t in tasks], fontsize=8)
    ax.set_facecolor("#eeeeee")
    bar = fig.colorbar(image, ax=ax, fraction=0.03)
    bar.set_label("within the job: worst (0) to best (1)", fontsize=8)
    ax.set_title("quality of each strategy on each kind of task (measured)")
    fig.tight_layout()
    return fig


def cost_quality(cells: list[dict], tasks):
    """One panel per task: quality against training seconds (prompting and RAG train for 0 s), one colour
    per strategy in every panel; marker area grows with the prompt tokens an answer pays for."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from labkit.topics.strategy import METRICS, STRATEGIES

    colours = dict(zip(STRATEGIES, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.1 * len(tasks) + 1.6, 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        # largest marker first, so a small one at the same point (zero-shot under few-shot) stays visible
        for c in sorted((c for c in cells if c["task"] == task), key=lambda c: -c["context_tokens"]):
            ax.scatter([c["train_seconds"]], [c["quality"]], s=15 + c["context_tokens"] / 3,
                       color=colours[c["strategy"]], alpha=0.75, edgecolor="black", linewidth=0.5)
        ax.set_xlim(left=-0.05 * max(c["train_seconds"] for c in cells))
        if not METRICS[task][1]:
            ax.set_yscale("log")
        ax.set(title=task, xlabel="training seconds",
               ylabel=METRICS[task][0] + ("" if METRICS[task][1] else " (lower is better)"))
        ax.title.set_fontsize(10)
        ax.xaxis.label.set_fontsize(8)
        ax.yaxis.label.set_fontsize(8)
    shown = [s for s in STRATEGIES if any(c["strategy"] == s for c in cells)]
    handles = [Line2D([], [], marker="o", ls="", color=colours[s], label=s) for s in shown]
    fig.legend(handles=handles, loc="center right", fontsize=8, title="strategy", title_fontsize=8)
    fig.suptitle("what quality costs (at 0 s: no training; a bigger marker: a longer prompt per answer)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / (3.1 * len(tasks) + 1.6), 1))
    return fig

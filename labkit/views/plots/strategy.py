"""Plots of notebook 13_choosing_a_strategy: the measured table, and quality against training cost."""

from __future__ import annotations


def table(cells: list[dict], tasks, strategies):
    """Tasks (rows) against strategies (columns): each measured cell shows its quality, coloured by how
    close it came to the task's best (1: the best; 0: the task's worst), since tasks are scored on
    different metrics; a strategy that does not apply to a task is a grey dash."""
    import matplotlib.pyplot as plt
    import numpy as np

    from labkit.topics.strategy import METRICS, score

    shade = np.full((len(tasks), len(strategies)), np.nan)
    fig, ax = plt.subplots(figsize=(11, 0.75 * len(tasks) + 1.6))
    for i, task in enumerate(tasks):
        row = {c["strategy"]: c for c in cells if c["task"] == task}
        if not row:
            continue
        scores = [score(task, c["quality"]) for c in row.values()]
        lo, hi = min(scores), max(scores)
        for j, s in enumerate(strategies):
            if s in row:
                q = row[s]["quality"]
                shade[i, j] = 1.0 if hi == lo else (score(task, q) - lo) / (hi - lo)
                ax.text(j, i, f"{q:.2f}", ha="center", va="center", fontsize=9,
                        color="white" if shade[i, j] < 0.35 else "black")
            else:
                ax.text(j, i, "-", ha="center", va="center", color="grey")
    image = ax.imshow(np.ma.masked_invalid(shade), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(strategies)), [s.replace(" ", "\n", 1) for s in strategies], fontsize=8)
    ax.set_yticks(range(len(tasks)), [f"{t}\n({METRICS[t][0]}{'' if METRICS[t][1] else ', lower is better'})"
                                      for t in tasks], fontsize=8)
    ax.set_facecolor("#eeeeee")
    bar = fig.colorbar(image, ax=ax, fraction=0.03)
    bar.set_label("within the task: worst (0) to best (1)", fontsize=8)
    ax.set_title("quality of each strategy on each kind of task (measured)")
    fig.tight_layout()
    return fig


def cost_quality(cells: list[dict], tasks):
    """One panel per task: quality against training seconds (prompting and RAG train for 0 s, drawn at
    the left edge), each point named by its strategy; marker size grows with the prompt tokens an
    answer pays for."""
    import matplotlib.pyplot as plt

    from labkit.topics.strategy import METRICS

    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.4))
    trained = [c["train_seconds"] for c in cells if c["train_seconds"] > 0]
    floor = min(trained) / 3 if trained else 0.1
    for ax, task in zip(axes, tasks):
        for c in (c for c in cells if c["task"] == task):
            x = max(c["train_seconds"], floor)
            ax.scatter([x], [c["quality"]], s=12 + c["context_tokens"] / 4, alpha=0.7)
            ax.annotate(c["strategy"], (x, c["quality"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.axvline(floor * 1.5, color="grey", lw=0.6, ls=":")
        ax.set(title=task, xlabel="training seconds (log; left of the line: none)", ylabel=METRICS[task][0])
        ax.title.set_fontsize(10)
        ax.xaxis.label.set_fontsize(8)
    fig.suptitle("what quality costs: marker area grows with the prompt tokens each answer pays for", fontsize=10)
    fig.tight_layout()
    return fig

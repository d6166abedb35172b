"""Plots of notebook 02_forgetting: capability curves during fine-tuning, learning vs forgetting."""

from __future__ import annotations

import matplotlib.pyplot as plt

CAPABILITIES = (("task", "target task (field accuracy)"), ("qa_recall", "fact recall"),
                ("reading", "in-context reading"), ("perplexity", "perplexity (lower is better)"))


def forgetting_curves(runs: dict):
    """One panel per capability against step, one line per run (``runs[name]['curve']`` rows)."""
    fig, axes = plt.subplots(1, len(CAPABILITIES), figsize=(15, 3.6))
    for ax, (key, label) in zip(axes, CAPABILITIES):
        for name, run in runs.items():
            steps = [row["step"] for row in run["curve"]]
            ax.plot(steps, [row[key] for row in run["curve"]], "o-", ms=3, label=name)
        ax.set(title=label, xlabel="step")
        if key == "perplexity":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def learning_vs_forgetting(runs: dict, forget_keys=("qa_recall", "reading")):
    """Target-task gain (x) against each capability lost (y, one panel per key), a point per run.
    Each run keeps its colour and marker in every panel; earlier runs are drawn larger, so runs that
    land on the same point stay visible."""
    fig, axes = plt.subplots(1, len(forget_keys), figsize=(5.5 * len(forget_keys), 4.2), squeeze=False)
    markers = "osD^vP*X"
    for ax, key in zip(axes[0], forget_keys):
        for i, (name, run) in enumerate(runs.items()):
            first, last = run["curve"][0], run["curve"][-1]
            ax.scatter(last["task"] - first["task"], first[key] - last[key], s=max(140 - 20 * i, 25),
                       marker=markers[i % len(markers)], color=f"C{i}", label=name, alpha=0.85,
                       edgecolors="white", linewidths=0.5)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(xlabel="target task gained (field accuracy)", ylabel=f"{key.replace('_', ' ')} lost",
               title=f"learning vs {key.replace('_', ' ')} lost (down-right is better)",
               xlim=(-0.05, 1.08), ylim=(-0.08, 1.08))
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig

"""Plots of notebook 06_peft_family: accuracy against trainable parameters with the Pareto front,
and what training memory is made of, per method."""

from __future__ import annotations

from labkit.core.units import mib

PARTS = ("frozen weights", "trainable weights", "gradients", "optimizer", "activations")


def accuracy_vs_parameters(points: dict[str, tuple[int, float]], front: list[str], base: float | None = None,
                           ylabel: str = "test score (record field accuracy)"):
    """One point per method at (trainable parameters, score), log x axis; the Pareto front joined."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for (method, (n, score)), colour in zip(points.items(), plt.cm.tab20.colors):
        ax.scatter(n, score, s=60, color=colour, edgecolor="black" if method in front else "none",
                   zorder=3, label=method)
    if front:
        ax.plot([points[m][0] for m in front], [points[m][1] for m in front], color="black", lw=1, ls="--",
                zorder=2, label="Pareto front")
    if base is not None:
        ax.axhline(base, color="grey", ls=":", label="base model")
    ax.set_xscale("log")
    ax.set(xlabel="trainable parameters (log scale)", ylabel=ylabel, ylim=(-0.03, 1.03),
           title="What each method buys per trained parameter")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def memory_parts(bytes_by_method: dict[str, dict]):
    """Stacked bars: the parts of each method's training memory (MiB), counted from tensors."""
    import matplotlib.pyplot as plt

    methods = list(bytes_by_method)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    left = [0.0] * len(methods)
    for part, colour in zip(PARTS, plt.cm.Set2.colors):
        widths = [mib(bytes_by_method[m].get(part, 0)) for m in methods]
        ax.barh(methods, widths, left=left, color=colour, label=part)
        left = [a + b for a, b in zip(left, widths)]
    ax.invert_yaxis()
    ax.set(xlabel="training memory (MiB, counted from the tensors; 1 MiB = 2^20 bytes)",
           title="Where training memory goes")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig

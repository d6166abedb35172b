"""Plots of notebook 11_data_quality_and_bias: a score against the share of wrong labels, and a model's
rate against its data's rate with the identity line (no amplification)."""

from __future__ import annotations


def noise_curve(curves: dict[str, tuple[list[float], list[float]]], early: dict[str, tuple[float, float]] | None = None,
                metric: str = "entity-level F1"):
    """``metric`` on clean test data against the share of wrong training labels, one line per method
    (``{label: (shares, scores)}``); ``early`` marks single runs (``{label: (share, score)}``) such as
    early stopping on a clean validation set."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (label, (shares, scores)), marker in zip(curves.items(), "os^D"):
        ax.plot(shares, scores, f"{marker}-", label=label)
    for label, (share, score) in (early or {}).items():
        ax.plot([share], [score], "*", ms=14, label=label)
    ax.set(xlabel="share of training entities with a wrong label", ylabel=f"{metric} on clean test people",
           ylim=(0, 1.05), title="What wrong labels cost")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def rates(greedy: dict[str, tuple[float, float]], expected: dict[str, tuple[float, float]],
          truth: float | None = None):
    """The model's rate against the data's rate, one colour per run: filled, the greedy rate
    (``{label: (data rate, model rate)}``), hollow, the expected rate (what sampling writes; the same keys),
    joined by a thin line and labelled at the hollow one; the identity line (a model that reproduces its
    data) and ``truth`` (the world's own rate) dotted."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, label="model rate = data rate (no amplification)")
    if truth is not None:
        ax.axhline(truth, color="grey", ls=":", label="the world's truth")
    for i, label in enumerate(greedy):
        colour = f"C{i}"
        (x, y), (_, e) = greedy[label], expected[label]
        ax.plot([x, x], [y, e], color=colour, lw=0.8, alpha=0.6)
        ax.plot([x], [y], "o", color=colour, ms=8)
        ax.plot([x], [e], "o", mfc="white", mec=colour, ms=8)
        ax.annotate(label, (x, e), textcoords="offset points", xytext=(7, -3), fontsize=8, color=colour)
    ax.plot([], [], "o", color="grey", label="greedy rate: the pronoun written")
    ax.plot([], [], "o", mfc="white", mec="grey", label="expected rate: its probability (sampling)")
    ax.set(xlabel='data rate: share of "learned" biographies with "her"',
           ylabel='model rate on new "learned" people: "her"', xlim=(-0.03, 1.25), ylim=(-0.05, 1.05),
           title="Bias amplification: above the line, the model exaggerates its data")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    return fig

"""Plots of notebook 03_lora_rank: a metric against rank, learning vs forgetting, update spectra."""

from __future__ import annotations

import torch

from labkit.topics.lora import SCALINGS, TARGETS


def metric_vs_rank(rows: list[dict], metric: str = "task", base: float | None = None,
                        full: float | None = None, ylabel: str = "target task (field accuracy)"):
    """One panel per target choice, one line per scaling: ``metric`` against rank (log axis)."""
    import matplotlib.pyplot as plt

    lora_rows = [r for r in rows if r["config"]["rank"]]
    choices = [t for t in reversed(TARGETS) if any(r["config"]["targets"] == t for r in lora_rows)]
    ranks = sorted({r["config"]["rank"] for r in lora_rows})
    fig, axes = plt.subplots(1, len(choices), figsize=(5.2 * len(choices), 3.6), sharey=True, squeeze=False)
    for ax, t in zip(axes[0], choices):
        for (sc, marker), colour in zip(zip(SCALINGS, "osD"), plt.cm.tab10.colors):
            pts = sorted((r["config"]["rank"], r["metrics"][metric]) for r in lora_rows
                         if r["config"]["targets"] == t and sc in r["config"]["scalings"])
            if pts:
                ax.plot(*zip(*pts), marker=marker, color=colour, label=sc)
        if base is not None:
            ax.axhline(base, color="grey", ls=":", label="base model")
        if full is not None:
            ax.axhline(full, color="black", ls="--", label="full fine-tuning")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ranks, [str(k) for k in ranks])
        ax.set(title=f"LoRA on {t}", xlabel="rank r (log scale)", ylabel=ylabel)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def learning_vs_forgetting(rows: list[dict], base: dict):
    """Task gained (x) against fact recall lost (y): colour is rank, marker is scaling."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(6.6, 4.4))
    ranks = [r["config"]["rank"] for r in rows if r["config"]["rank"]]
    norm = LogNorm(min(ranks), max(ranks))
    for r in rows:
        c, m = r["config"], r["metrics"]
        x, y = m["task"] - base["task"], base["qa_recall"] - m["qa_recall"]
        if not c["rank"]:
            ax.scatter(x, y, marker="*", s=160, color="black", label="full fine-tuning")
            continue
        marker = {"alpha ∝ r": "o", "fixed alpha": "s", "rsLoRA": "D"}[c["scalings"][0]] if c["rank"] > 1 else "P"
        face = plt.cm.viridis(norm(c["rank"])) if c["targets"] == "all linear" else "none"
        ax.scatter(x, y, marker=marker, s=45, facecolors=face, edgecolors=plt.cm.viridis(norm(c["rank"])))
    for sc, marker in (("alpha ∝ r", "o"), ("fixed alpha", "s"), ("rsLoRA", "D"), ("rank 1 (all)", "P")):
        ax.scatter([], [], marker=marker, color="grey", label=sc)
    ax.scatter([], [], marker="o", facecolors="none", edgecolors="grey", label="hollow: q,v only")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label="rank")
    ax.set(xlabel="target task gained (field accuracy)", ylabel="fact recall lost",
           title="learning vs forgetting, one point per run")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def spectra(spectra: dict, ranks: tuple[int, ...], energy: float = 0.9):
    """Left: singular values of each update (normalised to the largest). Right: cumulative
    energy, with the energy line and the swept LoRA ranks."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    kinds = list(TARGETS["all linear"])
    colours = dict(zip(kinds, plt.cm.tab10.colors))
    for name, s in spectra.items():
        kind = name.split(".")[-1]
        s = s.double()
        idx = range(1, len(s) + 1)
        ax1.plot(idx, (s / s[0]).numpy(), color=colours[kind], lw=0.9, alpha=0.8)
        ax2.plot(idx, (torch.cumsum(s**2, 0) / (s**2).sum()).numpy(), color=colours[kind], lw=0.9, alpha=0.8)
    for kind in kinds:
        ax2.plot([], [], color=colours[kind], label=kind)
    ax2.axhline(energy, color="black", ls="--", lw=0.8)
    for r in ranks:
        ax2.axvline(r, color="grey", ls=":", lw=0.8)
    ax1.set_ylim(1e-3, 1.5)  # the last few values of each update are numerically zero
    ax1.set(xscale="log", yscale="log", xlabel="index", ylabel="singular value / largest",
            title="full fine-tuning update: singular values")
    ax2.set(xscale="log", xlabel="index k (dotted: LoRA ranks swept)", ylabel="energy in top k",
            title=f"cumulative energy ({energy:.0%} dashed)")
    ax2.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig

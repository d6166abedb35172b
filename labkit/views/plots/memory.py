"""Plots of memory: footprints by format, stacked breakdowns, estimate vs measured, which card fits.
They return figures and never save them. Introduced in notebook 04_qlora_memory.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from labkit.core.units import mib

COLORS = {"weights": "#4c72b0", "gradients": "#dd8452", "optimizer": "#55a868", "activations": "#c44e52",
          "workspace": "#8172b3", "everything else": "#bbbbbb"}


def footprint_bars(rows: list[dict], formats, title: str = "weights in memory"):
    """Grouped bars: MiB of each ladder rung (rows: {'model', fmt: bytes...}) in each format (log scale)."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(formats)
    for j, fmt in enumerate(formats):
        ax.bar([i + j * width for i in range(len(rows))], [mib(r[fmt]) for r in rows], width, label=fmt)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], [r["model"] for r in rows], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("MiB")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    return fig


def stacked(ax, labels, parts: list[dict], offset=0.0, width=0.38, hatch=None):
    bottoms = [0.0] * len(labels)
    for key, color in COLORS.items():
        vals = [mib(p.get(key, 0.0)) for p in parts]
        if any(v > 0 for v in vals):
            ax.bar([i + offset for i in range(len(labels))], vals, width, bottom=bottoms, color=color,
                   label=key if hatch is None else None, hatch=hatch, edgecolor="white")
            bottoms = [b + v for b, v in zip(bottoms, vals)]
    return bottoms


def breakdown(labels, measured: list[dict], estimated: list[dict], title: str = "training peak, by part",
              ylabel: str = "MiB above the idle process"):
    """Side by side for each configuration: measured parts (left, plain) and estimated parts
    (right, hatched), stacked in MiB."""
    fig, ax = plt.subplots(figsize=(10, 4.2))
    stacked(ax, labels, measured, offset=-0.2)
    stacked(ax, labels, estimated, offset=0.2, hatch="//")
    ax.set_xticks(range(len(labels)), labels, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title + "  (left: measured, right: estimated, hatched)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def estimate_vs_measured(labels, measured, estimated, title: str = "estimator vs measured peak"):
    """Scatter of estimate against measurement (MiB) with the diagonal and each error in %."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    m = [mib(v) for v in measured]
    e = [mib(v) for v in estimated]
    ax.scatter(m, e)
    for k, (x, y, lab) in enumerate(zip(m, e, labels)):
        ax.annotate(f"{lab} {y / x - 1:+.0%}", (x, y), fontsize=7, textcoords="offset points",
                    xytext=(6, -12) if k % 2 else (-6, 6), ha="left" if k % 2 else "right")
    hi = max(m + e) * 1.1
    ax.plot([0, hi], [0, hi], "k--", lw=0.8)
    ax.fill_between([0, hi], [0, 0.85 * hi], [0, 1.15 * hi], color="grey", alpha=0.15, label="±15%")
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_xlabel("measured peak (MiB)")
    ax.set_ylabel("estimated peak (MiB)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fits_grid(rows: list[dict], cards, title: str = "which method fits which card"):
    """A grid: one row per (model, method), one column per card; green fits, red does not,
    each cell annotated with the estimate in GiB."""
    fig, ax = plt.subplots(figsize=(1.3 * len(cards) + 3, 0.32 * len(rows) + 1.2))
    grid = [[1.0 if r[c] else 0.0 for c in cards] for r in rows]
    ax.imshow(grid, cmap="RdYlGn", vmin=-0.3, vmax=1.3, aspect="auto")
    for i, r in enumerate(rows):
        for j in range(len(cards)):
            ax.text(j, i, f"{r['total_gib']:.0f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(cards)), cards, fontsize=8, rotation=20)
    ax.set_yticks(range(len(rows)), [f"{r['model']} · {r['method']}" for r in rows], fontsize=7)
    ax.set_title(title + " (GiB needed in each cell)")
    fig.tight_layout()
    return fig


def calculator_bar(result: dict):
    """One stacked bar of the parts present at the peak moment (GiB; they sum to the calculator's
    total) and the card's usable memory as a line."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    bottom = 0.0
    for key, val in result["parts_gib"].items():
        if val > 0:
            ax.barh([0], [val], left=bottom, color=COLORS[key], label=key)
            bottom += val
    usable = result["verdict"]["usable_gib"]
    ax.axvline(usable, color="k", ls="--", label="usable on the card")
    ax.set_yticks([])
    moment = "backward pass" if result["phase"] == "backward" else "optimizer update"
    ax.set_xlabel(f"GiB at the peak (the {moment})")
    ax.set_xlim(0, max(bottom, usable) * 1.15)
    ax.set_title(f"{result['model']}: {result['verdict']['text']}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig

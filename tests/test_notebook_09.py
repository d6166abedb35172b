"""Notebook 09_task_heads, executed by papermill in the ci profile, with its findings asserted.

Every threshold is owned here, with its reason; none is read from the results it judges. The design
looked at world seed 0 (a prototype of each run, then the notebook) and seeds 1-2 of the sector head
(prototype runs), ci settings; the seed sweep then judged seeds 1-10 (benchmarks/seeds/09_task_heads.md),
its runs judged again (``--rejudge``) by this file as it is now. Where a designed bound did not hold on
every seed, the comment says so and the test asserts what held instead, or is marked as a finding that
does not hold. Sixty test people per task: one answer moves an accuracy by 0.017.
"""

import math

import pytest
from conftest import run_notebook

# The QA head's body and the first token are structural, not statistical: they hold on every seed or the code is
# wrong. The first token is the BOS, which causal attention lets see only itself: its hidden state is the same for
# every text (difference 0 on seeds 0, 1; 1e-5 allows for float noise), so a head reading it gives one answer to
# all 60 texts, and its accuracy is one class's share, at most the commonest's (chance).
MAX_FIRST_TOKEN_SPREAD = 1e-5
# Sector, the decoder's head at ci's 40 steps: accuracy sits at chance, then jumps when the body learns to carry
# the job word to the last token, after a seed-dependent number of steps. Seed 0: 0.83 (random body 0.30); the
# prototype of seeds 1 and 2: 0.35 and 0.28, still at chance (at 80 steps: 0.30 and 0.68). Designed as "pretrained
# minus random >= 0.3" and "last- minus first-token pooling >= 0.3"; they held on one of the three seeds looked
# at, and on seeds 5, 8 and 10 of the sweep (3 of 10): marked as findings that do not hold at ci's size, reported
# as effects.
MIN_TRANSFER = 0.3
MIN_LAST_OVER_FIRST = 0.3
# A linear probe on the last token's frozen state: 0.33 on seed 0 (chance 0.30). The state was pretrained to
# predict the next word, not the sector. Asserted: at most chance + 0.15 (9 test people above always answering
# the commonest sector).
MAX_PROBE_OVER_CHANCE = 0.15
# Entities: full fine-tuning minus the linear probe, entity-level F1: +0.29 on seed 0 (0.77 against 0.48; 0.70 for
# the top block). 0.1 asserted.
MIN_ENTITIES_FULL_OVER_PROBE = 0.1
# Few labels: with the smallest curve size (8 examples, two per sector) the pretrained body stays near chance
# (0.15 against chance 0.30 on seed 0): a sector groups six jobs, and two examples cannot show them.
# Asserted: at most chance + 0.15, as for the probe.
MAX_FEW_SHOT_OVER_CHANCE = 0.15
# Entities: pretrained minus random body, entity-level F1: +0.11 on seed 0 (0.77 against 0.67). The random body
# learns much of the tagging from the words' shapes (capitalised names) alone. Designed as "at least 0.03"; seed 3
# of the sweep measured +0.027 (0.79 against 0.76). What held on seeds 0-10 is the direction: asserted as "the
# pretrained body scores higher" (+0.027 to +0.18 on seeds 1-10).
MIN_ENTITIES_TRANSFER = 0.0
# Extractive QA at 20 steps: pretrained minus random body, token F1: +0.20 on seed 0 (0.34 against 0.14). Designed
# as "at least 0.1"; seeds 2 and 7 of the sweep measured +0.08 and +0.045. What held: the direction (+0.045 to +0.25).
MIN_QA_TRANSFER = 0.0
# The prompted decoder (no training) reads passages as in pretraining: exact match 0.72 against the QA head's 0.23
# after 20 steps (seed 0). Asserted: at least 0.2 ahead (12 test people).
MIN_PROMPTED_OVER_QA_HEAD = 0.2
# MiniLM on sector with half the decoder's steps: 0.98 on seed 0. Designed as "at least 0.7, and no worse than the
# decoder by more than 0.05" (its [CLS] sees the job word from the start). It held on 5 of seeds 1-10 (2, 3, 5, 8,
# 10: 0.97-1.00); on the others MiniLM stayed at chance (0.23-0.37), on four of them with one answer for every
# text: a known failure of BERT fine-tuning on small data at a high learning rate (3e-4 here). Marked as a
# finding that does not hold at ci's size; the sweep reports it as an effect.
MIN_ENCODER_ACCURACY = 0.7
MIN_ENCODER_MINUS_DECODER = -0.05
# Writing the sector: the prompted decoder was never asked for a sector and writes none (0.00, seed 0).
# Asserted: at most 0.1 (guessing would give 0.25). Tuned for 40 steps it wrote 0.27 against the head's 0.83;
# that gap depends on the head's jump (above), so it is an effect, not a test.
MAX_PROMPTED_SECTOR = 0.1


def row(results, task, name):
    return next(r for r in results["table"] if r["task"] == task and r["name"] == name)


def gap(results, task, better, worse, metric):
    """``metric`` of run ``better`` minus run ``worse`` on ``task``."""
    return row(results, task, better)[metric] - row(results, task, worse)[metric]


# Effect sizes the seed sweep (benchmarks/seeds.py) reports over seeds, beside which findings held.
EFFECTS = {
    "sector, pretrained minus random body": lambda r: (row(r, "sector", "decoder, full")["accuracy"]
                                                       - row(r, "sector", "decoder, random body")["accuracy"]),
    "sector, last- minus first-token pooling": lambda r: gap(r, "sector", "decoder, full",
                                                             "decoder, first-token pooling", "accuracy"),
    "sector, full fine-tuning minus linear probe": lambda r: (row(r, "sector", "decoder, full")["accuracy"]
                                                              - row(r, "sector", "decoder, linear probe")["accuracy"]),
    "sector, full fine-tuning minus top block": lambda r: (row(r, "sector", "decoder, full")["accuracy"]
                                                           - row(r, "sector", "decoder, top 1 block")["accuracy"]),
    "sector, smallest curve size, pretrained minus chance": lambda r: (r["curve"][0]["pretrained"]
                                                                       - r["sizes"]["chance"]),
    "sector, MiniLM minus decoder": lambda r: (row(r, "sector", "MiniLM, full")["accuracy"]
                                               - row(r, "sector", "decoder, full")["accuracy"]),
    "sector, head minus tuned writer": lambda r: (row(r, "sector", "decoder, full")["accuracy"]
                                                  - row(r, "sector", "decoder writes it, tuned")["accuracy"]),
    "entities F1, pretrained minus random body": lambda r: (row(r, "entities", "decoder, full")["entity_f1"]
                                                            - row(r, "entities", "decoder, random body")["entity_f1"]),
    "entities F1, full minus linear probe": lambda r: (row(r, "entities", "decoder, full")["entity_f1"]
                                                       - row(r, "entities", "decoder, linear probe")["entity_f1"]),
    "QA F1, pretrained minus random body": lambda r: (row(r, "extractive_qa", "decoder, full")["f1"]
                                                      - row(r, "extractive_qa", "decoder, random body")["f1"]),
    "QA exact match, prompted decoder minus QA head": lambda r: (
        row(r, "extractive_qa", "decoder writes it, prompted")["exact_match"]
        - row(r, "extractive_qa", "decoder, full")["exact_match"]),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook("09_task_heads", tmp_path_factory)


@pytest.mark.notebook
def test_09_the_qa_head_sits_on_the_pretrained_body(results):
    body = results["qa_body"]
    assert body["prefix"] == "transformer" and body["equal"] == body["tensors"] > 0, body
    assert body["naive_equal"] == 0  # plain from_pretrained: a random body, the trap the notebook shows


@pytest.mark.notebook
def test_09_the_first_token_sees_nothing_of_the_text(results):
    assert results["first_token"]["first_spread"] <= MAX_FIRST_TOKEN_SPREAD < results["first_token"]["last_spread"]
    first = row(results, "sector", "decoder, first-token pooling")
    assert first["distinct_predictions"] == 1, first
    assert first["accuracy"] <= results["sizes"]["chance"] + 1e-9


@pytest.mark.notebook
@pytest.mark.xfail(reason="seed-dependent at ci's 40 steps: held on seed 0 and on 3 of seeds 1-10 (5, 8, 10)",
                   strict=False)
def test_09_pretraining_and_the_last_token_buy_the_sector_head(results):
    full = row(results, "sector", "decoder, full")["accuracy"]
    assert full - row(results, "sector", "decoder, random body")["accuracy"] >= MIN_TRANSFER
    assert full - row(results, "sector", "decoder, first-token pooling")["accuracy"] >= MIN_LAST_OVER_FIRST


@pytest.mark.notebook
def test_09_a_handful_of_labels_is_not_enough(results):
    smallest = results["curve"][0]
    assert smallest["n"] < results["sizes"]["train"]
    assert smallest["pretrained"] <= results["sizes"]["chance"] + MAX_FEW_SHOT_OVER_CHANCE, smallest


@pytest.mark.notebook
def test_09_a_frozen_body_is_not_enough(results):
    probe = row(results, "sector", "decoder, linear probe")
    assert probe["trainable_parameters"] < 10_000  # the head alone
    assert probe["accuracy"] <= results["sizes"]["chance"] + MAX_PROBE_OVER_CHANCE, probe
    gain = gap(results, "entities", "decoder, full", "decoder, linear probe", "entity_f1")
    assert gain >= MIN_ENTITIES_FULL_OVER_PROBE, gain


@pytest.mark.notebook
def test_09_pretraining_buys_the_token_head(results):
    gain = gap(results, "entities", "decoder, full", "decoder, random body", "entity_f1")
    assert gain > MIN_ENTITIES_TRANSFER, gain


@pytest.mark.notebook
def test_09_pretraining_buys_the_span_head(results):
    gain = gap(results, "extractive_qa", "decoder, full", "decoder, random body", "f1")
    assert gain > MIN_QA_TRANSFER, gain


@pytest.mark.notebook
def test_09_the_prompted_decoder_reads_better_than_a_fresh_qa_head(results):
    gain = gap(results, "extractive_qa", "decoder writes it, prompted", "decoder, full", "exact_match")
    assert gain >= MIN_PROMPTED_OVER_QA_HEAD, gain


@pytest.mark.notebook
@pytest.mark.xfail(reason="held on 5 of seeds 1-10 (2, 3, 5, 8, 10): MiniLM stayed at chance on the others",
                   strict=False)
def test_09_the_real_encoder_learns_the_sectors_in_fewer_steps(results):
    encoder, decoder = row(results, "sector", "MiniLM, full"), row(results, "sector", "decoder, full")
    assert encoder["steps"] < decoder["steps"]
    assert encoder["accuracy"] >= MIN_ENCODER_ACCURACY, encoder
    assert encoder["accuracy"] - decoder["accuracy"] >= MIN_ENCODER_MINUS_DECODER, (encoder, decoder)


@pytest.mark.notebook
def test_09_the_prompted_decoder_writes_no_sector(results):
    assert row(results, "sector", "decoder writes it, prompted")["accuracy"] <= MAX_PROMPTED_SECTOR


@pytest.mark.notebook
def test_09_every_run_is_recorded_and_finite(results):
    names = {(r["task"], r["name"]) for r in results["table"]}
    assert len(names) == len(results["table"])  # no run recorded twice
    for r in results["table"]:
        scores = [r[k] for k in ("accuracy", "macro_f1", "entity_f1", "exact_match", "f1") if k in r]
        assert scores and all(math.isfinite(v) and 0 <= v <= 1 for v in scores), r
        assert r["steps"] == 0 if r["n_train"] == 0 else r["steps"] > 0
        assert r["trainable_parameters"] <= r["parameters"]
    sizes = [c["n"] for c in results["curve"]]
    assert sizes == sorted(sizes) and sizes[-1] == results["sizes"]["train"]

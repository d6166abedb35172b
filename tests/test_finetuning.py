"""The record task (notebook 01) and notebook 01's findings, on fake rows and tiny tensors (no model)."""

import math

import pytest
import torch

from labkit import finetuning as ft
from labkit import memory
from labkit import world as W

# ---------------------------------------------------------------- the record task


def test_score_records():
    gold = ["Fort Tarn ; year 1990", "Fort Rusk ; year 1951"]
    pred = ["Fort Tarn ; year 1990", "Fort Rusk ; year 1952"]
    s = ft.score_records(pred, gold)
    assert s["field_accuracy"] == 0.75 and s["record_exact"] == 0.5


def test_a_malformed_record_is_not_an_exact_match():
    gold = "Fort Tarn ; year 1990 ; master baker"
    # every field right, but a seventh part appended, a field repeated, or the order changed
    for pred in ["Fort Tarn ; year 1990 ; master baker ; year 1990",
                 "Fort Tarn ; year 1990 ; master baker ; Fort Tarn",
                 "year 1990 ; Fort Tarn ; master baker"]:
        s = ft.score_records([pred], [gold])
        assert s["record_exact"] == 0.0 and s["field_accuracy"] == 1.0, (pred, s)
    assert ft.score_records([gold + " ."], [gold])["record_exact"] == 1.0  # the end marker is not a part


def test_a_field_written_twice_with_two_values_is_wrong():
    s = ft.score_records(["Fort Tarn ; year 1990 ; Fort Rusk"], ["Fort Tarn ; year 1990"])
    assert s["field_accuracy"] == 0.5, s  # city: two answers, neither counts


def test_learned_means_at_most_one_field_in_twenty_wrong():
    # The course's one definition of "learned the task" (notebooks 01-03): a model that writes the format but
    # gets one of the six fields wrong on every record has not learned it; one slip in twenty records has.
    gold = [W.record_answer(p) for p in W.make_world(0).qa_seen[:20]]
    one_field_wrong = [g.split(" ; ", 1)[1] for g in gold]  # the first field left out of every record
    fields = ft.score_records(one_field_wrong, gold)["field_accuracy"]
    assert fields == pytest.approx(5 / 6) and fields < ft.LEARNED
    one_slip = one_field_wrong[:1] + gold[1:]
    assert ft.score_records(one_slip, gold)["field_accuracy"] >= ft.LEARNED == 0.95


def test_record_metric_gives_generation_room_for_the_whole_record(monkeypatch):
    # A model that writes the true record (then the end marker) must score 1.0: the generation budget
    # has to cover the longest record in tokens, or the last fields are cut off and counted wrong.
    from labkit.model.tokenizer import build_tokenizer

    tok = build_tokenizer(1)
    pairs = ft.record_pairs(W.make_world(0), 8, "eval")
    truth = dict(pairs)

    def writes_the_truth(model, tokenizer, prompts, max_new_tokens, **kw):
        cut = [tokenizer.decode(tokenizer(f" {truth[p]}{W.END}", add_special_tokens=False).input_ids[:max_new_tokens])
               for p in prompts]
        return [c.split(W.END)[0].strip() for c in cut]

    monkeypatch.setattr(ft, "generate", writes_the_truth)
    scores = ft.record_metric(None, tok, pairs)
    assert scores["field_accuracy"] == 1.0 and scores["record_exact"] == 1.0, scores


def test_record_pairs_are_fresh_and_split():
    w = W.make_world(0)
    train, val = ft.record_pairs(w, 30, "train"), ft.record_pairs(w, 30, "eval")
    assert train == ft.record_pairs(w, 30, "train")
    names = lambda ps: {p.split("record of ")[1].rstrip(" :") for p, _ in ps}  # noqa: E731
    assert not names(train) & names(val)
    assert not names(train) & {p.name for p in w.pretrain_people + w.heldout}
    assert all(list(W.parse_record(a)) == list(W.ATTRIBUTES) for _, a in train)


# ---------------------------------------------------------------- findings


def test_metric_gain():
    g = ft.metric_gain({"field_accuracy": 0.1, "record_exact": 0.0, "predictions": []},
                       {"field_accuracy": 0.85, "record_exact": 0.5})
    assert g["field_accuracy"] == {"before": 0.1, "after": 0.85, "gain": pytest.approx(0.75)}
    assert g["record_exact"]["gain"] == 0.5
    # A run that got worse has a negative gain, not a clipped one.
    assert ft.metric_gain({"field_accuracy": 0.5}, {"field_accuracy": 0.2}, keys=("field_accuracy",))[
        "field_accuracy"]["gain"] == pytest.approx(-0.3)


def test_one_step_gaps():
    lib = [torch.tensor([3.0, 0.0]), torch.tensor([[0.0], [4.0]])]  # norm 5
    same = ft.one_step_gaps(1.25, 1.25, [t.clone() for t in lib], lib)
    assert same["update_size"] == 5.0 and same["update_gap"] == 0.0 and same["loss_gap"] == 0.0
    # A hand step off by 0.5 in one weight: the gap is 0.5 / 5 of the update; the loss gap is absolute.
    off = ft.one_step_gaps(1.0, 1.5, [torch.tensor([3.5, 0.0]), lib[1]], lib)
    assert off["update_gap"] == pytest.approx(0.1) and off["loss_gap"] == 0.5
    # Plain lists work as well as tensors; an update that did not move is reported as an infinite gap.
    assert ft.one_step_gaps(0, 0, [[1.0]], [[0.0]])["update_gap"] == math.inf
    with pytest.raises(ValueError, match="same model"):
        ft.one_step_gaps(0, 0, lib, lib[:1])


def _adamw_after_one_step(dtype=torch.float32):
    model = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Linear(3, 2, bias=False)).to(dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 5, dtype=dtype)).sum().backward()
    opt.step()
    return model, opt


def test_held_bytes_reads_the_real_adamw_tensors():
    model, opt = _adamw_after_one_step()
    n = sum(p.numel() for p in model.parameters())  # 5*3 + 3 + 3*2 = 24
    assert memory.held_bytes(model, opt) == {"weights": 4 * n, "gradients": 4 * n, "optimizer": 2 * 4 * n}
    # ... and so equals the bill: weights + gradients + two moments = 16 bytes per fp32 parameter.
    check = ft.memory_check(memory.full_finetuning_bytes(model), memory.held_bytes(model, opt), 1000, 1000 + 12 * n)
    assert check["bill_matches_held"] and check["bill"]["total"] == 16 * n
    assert check["growth_over_held"] == 1.0
    # Half-precision weights: every number halves, and the bill still matches.
    model, opt = _adamw_after_one_step(torch.bfloat16)
    check = ft.memory_check(memory.full_finetuning_bytes(model), memory.held_bytes(model, opt), 0, 1)
    assert check["bill_matches_held"]


def test_memory_check_catches_a_wrong_bill():
    model, opt = _adamw_after_one_step()
    held = memory.held_bytes(model, opt)
    # A bill that counts one moment (as for SGD with momentum) is short by one gradient's worth.
    wrong = ft.memory_check(memory.full_finetuning_bytes(model, "sgd_momentum"), held, 0, 0)
    assert not wrong["bill_matches_held"] and wrong["optimizer_gap"] == -held["gradients"]
    assert wrong["gradients_gap"] == 0
    # No gradients held (grads set to None before reading): the gradient bill does not match.
    model.zero_grad(set_to_none=True)
    assert not ft.memory_check(memory.full_finetuning_bytes(model), memory.held_bytes(model, opt), 0, 0)[
        "bill_matches_held"]


def test_held_bytes_callback_keeps_the_largest_reading():
    model, opt = _adamw_after_one_step()
    cb = ft.HeldBytes()
    cb.on_optimizer_step(None, None, None, model=model, optimizer=opt)
    first = dict(cb.held)
    model.zero_grad(set_to_none=True)  # what the Trainer does after each step
    cb.on_optimizer_step(None, None, None, model=model, optimizer=opt)
    assert cb.held == first and first["gradients"] > 0


def test_memory_check_growth_share():
    held = {"gradients": 100, "optimizer": 200}
    c = ft.memory_check({"gradients": 100, "optimizer": 200}, held, baseline_bytes=1000, peak_bytes=1150)
    assert c["growth_bytes"] == 150 and c["growth_over_held"] == 0.5


def test_overfit_summary_early_stop():
    val = [(0, 3.0), (1, 2.0), (2, 1.5), (3, 1.5), (4, 1.7), (5, 1.9)]
    s = ft.overfit_summary(val, steps_taken=5, max_steps=30, restored_loss=1.5004)
    assert (s["best_step"], s["best_loss"]) == (2, 1.5)  # the first of tied minima, as the Trainer keeps
    assert (s["first_loss"], s["last_step"], s["last_loss"]) == (3.0, 5, 1.9)
    assert s["stopped_early"] and s["rise_after_best"] == pytest.approx(0.4)
    assert s["restored_gap"] == pytest.approx(0.0004)


def test_overfit_summary_when_it_does_not_hold():
    # Validation loss still falling at the end, and every planned step taken: no overfitting, no early stop.
    s = ft.overfit_summary([(0, 3.0), (10, 2.0), (20, 1.0)], steps_taken=20, max_steps=20, restored_loss=2.0)
    assert not s["stopped_early"] and s["best_step"] == s["last_step"] == 20 and s["rise_after_best"] == 0
    assert s["restored_gap"] == 1.0  # the wrong model restored
    with pytest.raises(ValueError, match="No validation"):
        ft.overfit_summary([], 1, 1, 0.0)

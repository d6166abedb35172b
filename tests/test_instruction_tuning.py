"""Instruction tuning (notebook 07): the SFT wrapper refuses the silent failures, trains what it says."""

import random

import pytest
import torch

from labkit.core import instructions as I
from labkit.core import world as W
from labkit.topics import instruction_tuning as IT


def _train(n_per_kind=2):
    return I.instructions(W.make_world(0), "train", n_per_kind)


def test_every_label_masked_is_refused():
    from labkit.model.tokenizer import build_tokenizer

    tok = build_tokenizer(2)
    with pytest.raises(ValueError, match="Every label is masked"):
        IT.check_trained_tokens([{"input_ids": [5, 6, 7], "labels": [-100, -100, -100]}], tok)


def test_an_end_of_text_never_trained_is_refused():
    from labkit.model.tokenizer import build_tokenizer

    tok = build_tokenizer(2)
    eos = tok.eos_token_id
    with pytest.raises(ValueError, match="never learn to stop"):  # pad = eos masked out as padding
        IT.check_trained_tokens([{"input_ids": [5, 6, eos], "labels": [-100, 6, -100]}], tok)
    ok = IT.check_trained_tokens([{"input_ids": [5, 6, eos], "labels": [-100, 6, eos]}], tok)
    assert ok == {"trained_share": 2 / 3, "eos_trained": 1.0}


def test_assistant_only_loss_without_generation_markers_is_refused(tiny):
    model, tok = tiny  # version 1's chat template: no {% generation %} markers
    with pytest.raises(ValueError, match="generation"):
        IT.tune(model, tok, _train(1), out_dir="unused", steps=1, batch_size=2, lr=1e-3)


def test_tune_trains_a_copy_on_the_assistant_turns_only(tiny_v2, tmp_path):
    model, tok = tiny_v2
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    out = IT.tune(model, tok, _train(), out_dir=str(tmp_path), steps=2, batch_size=4, lr=1e-2)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())  # the original is untouched
    # the copy trained (compared on the CPU: the Trainer moves the copy to a GPU where there is one)
    assert any(not torch.equal(p.detach().cpu(), before[n]) for n, p in out["model"].named_parameters())
    assert 0 < out["trained_share"] < 0.5  # answers are short next to their passages
    assert out["eos_trained"] == 1.0 and out["losses"]
    whole = IT.tune(model, tok, _train(), out_dir=str(tmp_path), steps=1, batch_size=4, lr=1e-2,
                    assistant_only=False)
    assert whole["trained_share"] > 0.9


def test_sloppy_keeps_format_and_changes_content():
    train = _train(4)
    assert IT.sloppy(train, 0.0) == train
    changed = IT.sloppy(train, 1.0)
    for old, new in zip(train, changed):
        assert new["kind"] == old["kind"] and new["messages"][0] == old["messages"][0]
        assert new["messages"][1]["content"] == new["reference"]
    assert sum(o["reference"] != n["reference"] for o, n in zip(train, changed)) >= len(train) // 2
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        IT.sloppy(train, 1.5)


def test_scores_weigh_each_kind_the_same():
    rows = ([{"kind": "answer", "score": 1.0}] * 3 + [{"kind": "who", "score": 0.0}]
            + [{"kind": "verify", "score": 0.5}])
    s = IT.scores(rows)
    assert s["answer"] == 1.0 and s["seen"] == 0.5 and s["heldout"] == 0.5


def test_few_shot_never_shows_a_held_out_kind():
    world = W.make_world(0)
    held = I.instructions(world, "heldout", 1)
    assert all(IT.pick_shots(_train(), e, 2, random.Random(0)) == [] for e in held)


def test_few_shot_prompts_stay_within_the_context(tiny_v2):
    _, tok = tiny_v2
    train, rng = _train(8), random.Random(0)
    for e in I.instructions(W.make_world(0), "test", 2):
        shots = IT.pick_shots(train, e, 3, rng, tok, 256)
        assert all(s["kind"] == e["kind"] for s in shots) and len(shots) <= 3
        assert len(tok(IT.chat_prompt(tok, e, shots)).input_ids) <= 256 or not shots
    rewrite = next(e for e in train if e["kind"] == "rewrite")  # short: three fit in a long context
    assert len(IT.pick_shots(train, rewrite, 3, rng, tok, 10_000)) == 3
    assert IT.pick_shots(train, rewrite, 3, rng, tok, 5) == []


def test_the_shipped_model_stops_after_a_reading_answer(base):
    from labkit.engine.evaluate import generate_with_stops

    model, tok = base
    person = W.make_world(0).heldout[0]
    prompt, answer = W.reading_example([person], [(person, "city")], random.Random(0))[0]
    (text, stopped), = generate_with_stops(model, tok, [prompt], max_new_tokens=8)
    assert stopped and text.startswith(answer)
    (_, cut), = generate_with_stops(model, tok, [prompt], max_new_tokens=1)
    assert not cut


def test_generation_markers_are_found_only_as_markers(tiny, tiny_v2):
    assert IT.has_generation_markers(tiny_v2[1])
    assert not IT.has_generation_markers(tiny[1])  # its template says add_generation_prompt, not the marker
    assert "add_generation_prompt" in tiny[1].chat_template


def test_trl_settings_use_mixed_precision_only_on_a_gpu():
    from labkit.engine.train import trl_settings

    cpu = trl_settings(steps=10, batch_size=2, lr=1e-3, cuda=False)
    assert not cpu["bf16"] and not cpu["fp16"] and cpu["use_cpu"] and not cpu["activation_checkpointing"]
    t4 = trl_settings(steps=10, batch_size=2, lr=1e-3, cuda=True, half="fp16")
    a100 = trl_settings(steps=10, batch_size=2, lr=1e-3, cuda=True, half="bf16")
    assert (t4["fp16"], t4["bf16"], a100["fp16"], a100["bf16"]) == (True, False, False, True)
    assert not t4["use_cpu"]


def test_sft_config_turns_off_the_slow_cpu_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the CPU's config, on any machine
    args = IT.sft_config(str(tmp_path), steps=10, batch_size=2, lr=1e-3)
    assert not args.gradient_checkpointing and not args.bf16 and not args.fp16 and args.use_cpu
    assert args.assistant_only_loss and args.max_steps == 10 and args.save_strategy == "no"
    monkeypatch.undo()  # this machine's config: mixed precision only where there is a GPU
    from labkit.engine.train import trl_settings

    expected = trl_settings(steps=10, batch_size=2, lr=1e-3)
    here = IT.sft_config(str(tmp_path), steps=10, batch_size=2, lr=1e-3)
    assert not here.gradient_checkpointing and (here.bf16, here.fp16) == (expected["bf16"], expected["fp16"])


def test_assistant_labels_train_the_answer_and_its_end(tiny_v2):
    _, tok = tiny_v2
    example = _train(1)[0]
    enc = IT.assistant_labels(tok, example["messages"])
    trained = [i for i, label in zip(enc["input_ids"], enc["labels"]) if label != -100]
    assert trained[-1] == tok.eos_token_id
    assert tok.decode(trained[:-1]).strip().replace(" ##", "") == example["reference"].replace(" ##", "")
    shown = IT.show_trained(tok, enc["input_ids"], enc["labels"])
    assert shown.count("[") == len(trained) and shown.endswith(f"[{tok.eos_token}]")
    assert IT.mask_labels([4, 5, 6], [0, 1, 1]) == [-100, 5, 6]


def test_summary_facts_score_against_the_passage():
    world = W.make_world(0)
    example = next(e for e in I.instructions(world, "test", 2) if e["kind"] == "summarize")
    assert IT.summary_facts(example, example["reference"]) == {"precision": 1.0, "recall": 1.0, "named": True}
    job, city = sorted(example["items"], key=lambda v: not v.startswith("master"))
    wrong_city = next(f"Fort {c}" for c in W.BARE["city"] if f"Fort {c}" != city)
    invented = IT.summary_facts(example, f"Zz Zz is a {job} from {wrong_city} .")
    assert invented == {"precision": 0.5, "recall": 0.5, "named": False}
    employer = W.find_values(example["messages"][0]["content"])["employer"][0]
    extra = IT.summary_facts(example, f"{example['reference']} works for {employer} .")
    assert extra["precision"] == 1.0 and extra["recall"] == 1.0  # true, though not in the reference: not invented
    assert IT.summary_facts(example, "")["precision"] == 1.0  # nothing written, nothing invented
    assert IT.precision_recall(set(), {"a"}, {"a", "b"}) == (1.0, 0.0)


def test_training_set_sizes_beyond_the_training_set_are_refused():
    from labkit.core.settings import get_profile

    S = get_profile("ci").instruct
    IT.check_sizes(S)
    msg = "sizes 999 are not possible: there are 384 training examples; choose sizes from 1 to 384"
    with pytest.raises(ValueError, match=msg):
        IT.check_sizes(get_profile("ci").override(instruct={"curve": (24, 999)}).instruct)


def test_the_plots_draw():
    from labkit.views.plots import instruction_tuning as plots

    scores = {"zero-shot": {"answer": 0.1, "compare": 0.0}, "tuned": {"answer": 0.5}}
    assert plots.kind_bars(scores, ["answer", "compare"], ("compare",)).axes
    assert plots.learning_curve([24, 96], [0.2, 0.3], [0.0, 0.0], {"seen": 0.1, "heldout": 0.0}).axes

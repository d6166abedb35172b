import pytest
import torch

from labkit import finetuning, forgetting, peft_config
from labkit import world as W


def test_top_layers_only(tiny):
    model, _ = tiny
    forgetting.train_top_layers(model, 1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("model.layers.1.", "model.norm")) for n in trainable)


def test_lora_counts_match_shapes(tiny):
    model, _ = tiny
    linears = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in n]
    wrapped = peft_config.add_lora(model, rank=4)
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    assert trainable == sum(4 * (m.in_features + m.out_features) for m in linears)


def test_replay_pairs_come_from_the_pretraining_world():
    w = W.make_world(0)
    pairs = forgetting.replay_pairs(w, 50)
    assert pairs == forgetting.replay_pairs(w, 50)
    names = {p.name for p in w.qa_seen}
    assert all(any(n in prompt for n in names) for prompt, _ in pairs)


def test_probe_records_every_interval(tiny):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    model, tok = tiny
    w = W.make_world(0)
    probe = forgetting.CapabilityProbe(tok, w, [("passage : x record of Ka Bo :", "Fort Tarn")], every=2, n_people=2)
    state, control = TrainerState(), TrainerControl()
    args = TrainingArguments(output_dir="unused", report_to="none")
    probe.on_train_begin(args, state, control, model=model)
    for step in (1, 2, 3, 4):
        state.global_step = step
        probe.on_step_end(args, state, control, model=model)
    assert [r["step"] for r in probe.rows] == [0, 2, 4]
    assert set(probe.rows[0]) == {"step", "qa_recall", "reading", "perplexity", "task"}


# ---------------------------------------------------------------- findings, on fake curves

def curve(recall, task, reading=None, perplexity=None):
    """Probe rows at steps 0, 15, 30, ... from lists of values (reading and perplexity default to flat)."""
    n = len(recall)
    reading = reading or [1.0] * n
    perplexity = perplexity or [1.4] * n
    return [{"step": 15 * i, "qa_recall": r, "task": t, "reading": rd, "perplexity": p}
            for i, (r, t, rd, p) in enumerate(zip(recall, task, reading, perplexity))]


def fake_runs():
    return {
        "full high": {"curve": curve([1.0, 0.6, 0.2, 0.0], [0.0, 0.5, 0.9, 1.0], [1.0, 0.2, 0.0, 0.0],
                                     [1.4, 3.0, 8.0, 9.5])},
        "full low": {"curve": curve([1.0, 1.0, 1.0, 0.98], [0.0, 0.3, 0.8, 0.95], [1.0, 0.9, 0.7, 0.6])},
        "LoRA r=4": {"curve": curve([1.0, 1.0, 0.95, 0.9], [0.0, 0.2, 0.5, 0.8])},
        "LoRA r=16": {"curve": curve([1.0, 0.5, 0.3, 0.1], [0.0, 0.6, 0.95, 1.0], [1.0, 0.0, 0.0, 0.0])},
        "replay": {"curve": curve([1.0, 0.7, 0.4, 0.55], [0.0, 0.5, 0.9, 1.0], [1.0, 0.3, 0.1, 0.1])},
    }


def test_summarize_reads_first_and_last_rows():
    s = forgetting.summarize(fake_runs())
    assert s["recall_lost"]["full high"] == pytest.approx(1.0)
    assert s["recall_lost"]["full low"] == pytest.approx(0.02)
    assert s["reading_lost"]["full low"] == pytest.approx(0.4)
    assert s["perplexity_before"] == 1.4 and s["perplexity_after"]["full high"] == 9.5
    assert s["final_task"]["LoRA r=4"] == 0.8 and s["task_gained"]["LoRA r=4"] == pytest.approx(0.8)
    # "Learned" is the course's one definition (notebook 01): field accuracy >= finetuning.LEARNED (0.95),
    # reached exactly by "full low"; LoRA r=4 ends at 0.8.
    assert s["learned_at"] == finetuning.LEARNED == 0.95
    assert s["learned"] == {"full high": True, "full low": True, "LoRA r=4": False, "LoRA r=16": True,
                            "replay": True}
    assert forgetting.summarize(fake_runs(), learned_at=0.7)["learned"]["LoRA r=4"] is True


def test_steadiness_judges_only_runs_that_lost_recall_and_names_its_tolerance():
    s = forgetting.summarize(fake_runs())
    # "full low" (lost 0.02) and "LoRA r=4" (lost exactly 0.1, not more) are not judged.
    assert s["forgetting_monotone_in_steps"] == {"full high": True, "LoRA r=16": True, "replay": False}
    assert s["rise_tolerance"] == 0.05
    # Replay's recall rose 0.15 between two points: steady only with a tolerance above that.
    assert forgetting.summarize(fake_runs(), tolerance=0.2)["forgetting_monotone_in_steps"]["replay"]
    assert forgetting.steady(curve([1.0, 0.5, 0.54, 0.2], [0] * 4))        # a rise of 0.04 <= 0.05
    assert not forgetting.steady(curve([1.0, 0.5, 0.56, 0.2], [0] * 4))    # a rise of 0.06
    sentence = forgetting.steadiness_sentence(s["forgetting_monotone_in_steps"], s["rise_tolerance"])
    assert "by more than 0.05" in sentence and "in: full high, LoRA r=16;" in sentence
    assert sentence.endswith("at some point in: replay.")


def test_summarize_refuses_a_learned_at_outside_0_1():
    with pytest.raises(ValueError, match="learned_at"):
        forgetting.summarize(fake_runs(), learned_at=70)


def test_compare_states_verdicts_replay_and_reading():
    s = forgetting.summarize(fake_runs())
    c = forgetting.compare(s, high="full high", low="full low", replay="replay", lora=["LoRA r=4", "LoRA r=16"])
    assert c["lora_verdicts"] == {"LoRA r=4": "learned less and forgot less", "LoRA r=16": "forgot less"}
    assert c["gentle_kept_facts"] is True          # learned, and lost 0.02 <= 0.1 (LoRA r=4) + 0.05
    assert c["gentle_verdict"] == "learned the task and kept the facts as well as the best LoRA run"
    assert c["reading_kept"] == ["full low", "LoRA r=4"]
    assert c["replay_recall_saved"] == pytest.approx(1.0 - 0.45)


def test_compare_when_the_findings_do_not_hold():
    runs = fake_runs()
    runs["LoRA r=4"]["curve"] = curve([1.0, 0.5, 0.0, 0.0], [0.0, 0.2, 0.5, 0.8])       # forgot all
    runs["full low"]["curve"] = curve([1.0, 0.9, 0.6, 0.5], [0.0, 0.1, 0.3, 0.5])       # not learned
    runs["replay"]["curve"] = curve([1.0, 0.5, 0.1, 0.0], [0.0, 0.5, 0.9, 1.0])         # no protection
    s = forgetting.summarize(runs)
    c = forgetting.compare(s, high="full high", low="full low", replay="replay", lora=["LoRA r=4"])
    assert c["lora_verdicts"] == {"LoRA r=4": "forgot as much or more"}
    assert c["gentle_kept_facts"] is False
    assert c["gentle_verdict"] == "did not learn the task, though it kept the facts as well as the best LoRA run"
    assert c["replay_recall_saved"] == pytest.approx(0.0)
    # Learned the task but forgot more than LoRA + 0.05: still not "kept the facts".
    runs["full low"]["curve"] = curve([1.0, 0.9, 0.6, 0.5], [0.0, 0.5, 0.8, 0.96])
    runs["LoRA r=4"]["curve"] = curve([1.0, 1.0, 0.9, 0.8], [0.0, 0.2, 0.5, 0.8])
    c = forgetting.compare(forgetting.summarize(runs), high="full high", low="full low", replay="replay",
                           lora=["LoRA r=4"])
    assert c["gentle_kept_facts"] is False
    assert c["gentle_verdict"] == "learned the task but did not keep the facts as well as the best LoRA run"
    # Neither: short of the task (0.9 < 0.95) and forgot more.
    runs["full low"]["curve"] = curve([1.0, 0.9, 0.6, 0.5], [0.0, 0.5, 0.8, 0.9])
    c = forgetting.compare(forgetting.summarize(runs), high="full high", low="full low", replay="replay",
                           lora=["LoRA r=4"])
    assert c["gentle_verdict"] == "neither learned the task nor kept the facts as well as the best LoRA run"
    # Without LoRA runs there is nothing to keep the facts "as well as": only learning is stated.
    assert forgetting.gentle_verdict(forgetting.summarize(runs), "full low", []) == "did not learn the task"


def test_state_hash_changes_with_any_weight(tiny):
    import copy

    model, _ = tiny
    h = forgetting.state_hash(model)
    twin = copy.deepcopy(model)
    assert forgetting.state_hash(twin) == h and len(h) == 64
    with torch.no_grad():
        twin.model.layers[1].mlp.down_proj.weight[3, 5] += 1e-6   # one float, a tiny change
    assert forgetting.state_hash(twin) != h
    assert forgetting.state_hash(model) == h                      # the copy's change left the original


def test_before_capabilities_are_the_cards_probes(tiny):
    from labkit import capabilities, card

    model, tok = tiny
    w = W.make_world(0)
    before = forgetting.before_capabilities(model, tok, w)
    full = capabilities.measure(model, tok, w, **{**card.PROBE, "reading_k": (1,)})
    assert set(before) == set(forgetting.CARD_KEYS)
    assert before == {k: pytest.approx(full[k]) for k in forgetting.CARD_KEYS}

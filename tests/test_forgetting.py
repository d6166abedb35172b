import torch

from labkit import forgetting, peft_config
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

"""Preference tuning (notebook 08): the reward model trains through TRL, scores as TRL does, and its
accuracy splits by where the nuisance feature sits."""

import pytest
import torch

from labkit.core import preferences as P
from labkit.core import world as W
from labkit.topics import preference_tuning as PT


@pytest.fixture
def saved_tiny(tiny_v2, tmp_path):
    model, tok = tiny_v2
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    return str(tmp_path / "tiny"), tok


def test_reward_model_trains_a_score_head_on_the_pretrained_body(saved_tiny, tiny_v2, tmp_path):
    path, tok = saved_tiny
    pairs = P.pairs(W.make_world(0), "train", "length", 0.5, n=16)
    out = PT.train_reward_model(tok, pairs, out_dir=str(tmp_path / "rm"), steps=2, batch_size=4, lr=1e-3,
                                model_id=path)
    rm = out["model"]
    assert rm.score.out_features == 1 and out["losses"] and out["seconds"] > 0
    body = dict(tiny_v2[0].model.named_parameters())
    # compared on the CPU: the Trainer moves the reward model to a GPU where there is one
    moved = [n for n, p in rm.model.named_parameters() if not torch.equal(p.detach().cpu(), body[n])]
    assert moved  # the body trains too, not only the head


def test_rewards_score_the_last_token_whatever_the_padding(saved_tiny):
    from labkit.model.loading import load_model

    path, tok = saved_tiny
    rm, _ = load_model(path, head="sequence", num_labels=1)
    pair = P.pairs(W.make_world(0), "train", "length", 0.5, n=1)[0]
    short, long = pair["prompt"] + pair["chosen"], pair["prompt"] + pair["rejected"]
    tok.padding_side = "left"
    alone = PT.rewards(rm, tok, [short]) + PT.rewards(rm, tok, [long])
    together = PT.rewards(rm, tok, [short, long])
    assert together == pytest.approx(alone, abs=1e-5)
    assert tok.padding_side == "left"  # restored


class _Judge(torch.nn.Module):
    """A stand-in reward model: scores a text by how many filler words it holds (the length feature)."""

    def __init__(self, tok):
        super().__init__()
        self.filler = {i for t in P.FILLER for i in tok(t, add_special_tokens=False).input_ids}
        self.device = torch.device("cpu")

    def forward(self, input_ids, attention_mask):
        score = [[float(sum(int(i) in self.filler for i, m in zip(row, mask) if m))]
                 for row, mask in zip(input_ids, attention_mask)]
        return type("Out", (), {"logits": torch.tensor(score)})()


def test_pair_accuracy_exposes_a_reward_model_that_learned_the_feature(tiny_v2):
    _, tok = tiny_v2
    pairs = P.pairs(W.make_world(0), "test", "length", n=60)
    acc = PT.pair_accuracy(_Judge(tok), tok, pairs)
    assert acc["feature_on_chosen"] == 1.0 and acc["feature_on_rejected"] == 0.0 and acc["shortcut"] == 1.0
    assert acc["all"] == pytest.approx(P.feature_rate(pairs))


def test_an_unknown_head_is_refused_in_one_sentence():
    from labkit.model.loading import ModelError, load_model

    with pytest.raises(ModelError, match="Unknown head 'regression': use one of causal, sequence"):
        load_model(head="regression")


def test_reinforce_keeps_the_policy_it_starts_from_as_its_reference(saved_tiny, tmp_path):
    """TRL reloads its reference from the policy's name: without the fix that is the untuned model."""
    from labkit.model.loading import load_model

    path, tok = saved_tiny
    policy, _ = load_model(path)
    with torch.no_grad():  # the policy RL starts from differs from the model it was tuned from
        for p in policy.parameters():
            p.add_(0.01)
    rm, _ = load_model(path, head="sequence", num_labels=1)
    specs = [p["spec"] for p in P.pairs(W.make_world(0), "train", "length", 0.5, n=8)]
    out = PT.reinforce(policy, tok, specs, rm, out_dir=str(tmp_path / "rl"), steps=2, batch_size=4, lr=1e-3,
                       beta=0.1, generations=2, max_new_tokens=6)
    ref = {n: p.detach().cpu() for n, p in out["trainer"].ref_model.named_parameters()}  # on a GPU if there is one
    assert all(torch.equal(p, ref[n]) for n, p in policy.named_parameters())
    assert out["curve"] and {"proxy", "gold", "words", "kl", "clipped"} <= set(out["curve"][0])
    assert all(-1 <= row["gold"] <= 1 for row in out["curve"])


def test_judge_scores_answers_by_the_world(tiny_v2):
    model, tok = tiny_v2
    specs = [p["spec"] for p in P.pairs(W.make_world(0), "test", n=3)]
    out = PT.judge(model, tok, specs, max_new_tokens=4)
    assert len(out["answers"]) == 3 and -1 <= out["gold"] <= 1 and 0 <= out["stopped"] <= 1
    assert out["words"] == pytest.approx(sum(len(a.split()) for a in out["answers"]) / 3)


def test_response_logprob_sums_the_response_tokens(tiny_v2):
    model, tok = tiny_v2
    pair = P.pairs(W.make_world(0), "train", n=1)[0]
    got = PT.response_logprob(model, tok, pair["prompt"], pair["chosen"])
    head = tok(tok.apply_chat_template(pair["prompt"], tokenize=False, add_generation_prompt=True),
               add_special_tokens=False).input_ids
    full = tok(tok.apply_chat_template(pair["prompt"] + pair["chosen"], tokenize=False),
               add_special_tokens=False).input_ids
    assert full[:len(head)] == head  # the prompt is a prefix of the whole conversation
    with torch.no_grad():
        logits = model(torch.tensor([full])).logits[0]
    expected = sum(torch.log_softmax(logits[i - 1], -1)[full[i]].item() for i in range(len(head), len(full)))
    assert got == pytest.approx(expected, abs=1e-3)
    assert tok.eos_token_id in full[len(head):]


def test_dpo_trains_a_copy_whose_implicit_reward_prefers_the_chosen(tiny_v2, tmp_path):
    model, tok = tiny_v2
    pairs = P.pairs(W.make_world(0), "train", "length", 0.5, n=8)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    untrained = PT.implicit_pair_accuracy(model, model, tok, pairs)
    assert untrained["all"] == 0.0  # the policy is its own reference: every implicit reward is 0, a tie
    out = PT.dpo(model, tok, pairs, out_dir=str(tmp_path / "dpo"), steps=8, batch_size=4, lr=1e-2, beta=0.1)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())  # the original is untouched
    trained = PT.implicit_pair_accuracy(out["model"], model, tok, pairs)
    assert trained["all"] >= 0.75  # fitted on these very pairs
    assert out["losses"][-1][1] < out["losses"][0][1]


def test_answer_logprobs_of_a_left_padded_row_match_the_row_alone(tiny_v2):
    """Padding is masked out and does not shift a row's positions: a padded row scores as it does alone."""
    model, tok = tiny_v2
    pairs = P.pairs(W.make_world(0), "train", n=6)
    rows = [tok(tok.apply_chat_template(p["prompt"] + p["chosen"], tokenize=False), add_special_tokens=False).input_ids
            for p in pairs]
    rows = [min(rows, key=len), max(rows, key=len)]
    assert len(rows[0]) < len(rows[1])
    width = len(rows[1])
    ids = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    batched = PT.answer_logprobs(model, ids, mask, width - 5)
    for got, r in zip(batched, rows):
        alone = PT.answer_logprobs(model, torch.tensor([r]), torch.ones(1, len(r), dtype=torch.long), len(r) - 5)
        assert torch.allclose(got, alone[0], atol=1e-4)


def test_kl_to_reference_is_zero_for_the_reference_and_grows_with_the_distance(tiny_v2):
    import copy

    model, tok = tiny_v2
    specs = P.prompts(W.make_world(0), "test", n=4)
    assert PT.kl_to_reference(model, model, tok, specs, samples=2, max_new_tokens=8) == 0.0
    kls = []
    for scale in (0.02, 0.2):
        moved = copy.deepcopy(model)
        with torch.no_grad():
            moved.lm_head.weight.mul_(1 + scale * 10)  # sharper (or flatter) next-token distributions
            for p in moved.model.layers.parameters():
                p.add_(scale * torch.randn_like(p))
        kls.append(PT.kl_to_reference(moved, model, tok, specs, samples=8, max_new_tokens=8))
    assert 0 < kls[0] < kls[1]


def test_bradley_terry_and_dpo_losses():
    import math

    assert PT.bradley_terry_loss(1.0, 1.0) == pytest.approx(math.log(2))  # a tie: a model that knows nothing
    assert PT.bradley_terry_loss(3.0, 1.0) == pytest.approx(-math.log(1 / (1 + math.exp(-2))))
    assert PT.bradley_terry_loss(1.0, 3.0) > PT.bradley_terry_loss(3.0, 1.0)
    assert PT.bradley_terry_loss(0.0, 100.0) == pytest.approx(100.0)  # no overflow far from zero
    # the policy gained 2 nats on the chosen and lost 1 on the rejected, against the reference
    assert PT.dpo_loss(-8.0, -13.0, -10.0, -12.0, beta=0.5) == pytest.approx(PT.bradley_terry_loss(1.5, 0.0))
    assert PT.dpo_loss(-10.0, -12.0, -10.0, -12.0, beta=0.5) == pytest.approx(math.log(2))  # the reference itself


def test_trend_reads_start_end_and_peak():
    curve = [{"step": s, "proxy": p} for s, p in zip(range(4, 36, 4), [0, 1, 2, 5, 3, 3, 4, 4])]
    t = PT.trend(curve, "proxy")
    assert t == {"start": 0.5, "end": 4.0, "peak": 5, "peak_step": 16}
    assert PT.trend(curve[:1], "proxy") == {"start": 0, "end": 0, "peak": 0, "peak_step": 4}


def test_policy_row_judges_the_policy_and_carries_the_cost(tiny_v2):
    model, tok = tiny_v2
    specs = P.prompts(W.make_world(0), "test", n=3)
    row = PT.policy_row("x", model, model, tok, specs, {"seconds": 2.5, "peak_bytes": 2**30}, max_new_tokens=4,
                        kl_samples=1)
    assert row["kl"] == 0.0 and row["seconds"] == 2.5 and row["peak_gib"] == 1.0 and len(row["answers"]) == 3
    assert row["gold"] == PT.judge(model, tok, specs, 4)["gold"]


def test_demonstrations_answer_every_asked_fact_right():
    specs = P.prompts(W.make_world(0), "train", n=20)
    for spec, demo in zip(specs, P.demonstrations(specs)):
        assert demo["messages"][0] == spec["messages"][0] and demo["messages"][1]["role"] == "assistant"
        assert P.gold_reward(spec, demo["messages"][1]["content"]) == 1.0
    assert {s["name"] for s in specs}.isdisjoint({s["name"] for s in P.prompts(W.make_world(0), "test", n=50)})


def test_the_plots_draw():
    from labkit.views.plots import preference_tuning as plots

    acc = {"all": 0.5, "feature_on_chosen": 1.0, "feature_on_rejected": 0.0, "shortcut": 1.0}
    assert plots.reward_accuracy({"like training": acc, "unlinked": acc}).axes
    curve = [{"step": s, "proxy": s / 10, "gold": 0.1, "words": 8 + s, "kl": s / 100} for s in (4, 8, 12)]
    assert len(plots.rl_curve(curve).axes) == 4  # two panels, each with a second y axis
    rows = [{"name": "SFT", "kl": 0.0, "gold": 0.2, "words": 7.5}, {"name": "RL", "kl": 5.0, "gold": 0.1, "words": 16}]
    assert plots.gold_against_kl(rows).axes


def test_response_logprobs_in_a_padded_batch_match_one_at_a_time(tiny_v2):
    model, tok = tiny_v2
    pairs = P.pairs(W.make_world(0), "train", n=5)
    batched = PT.response_logprobs(model, tok, [p["prompt"] for p in pairs], [p["rejected"] for p in pairs],
                                   batch_size=3)
    alone = [PT.response_logprobs(model, tok, [p["prompt"]], [p["rejected"]])[0] for p in pairs]
    assert batched == pytest.approx(alone, abs=1e-3)
    assert len({round(x, 3) for x in batched}) == 5  # different responses, different log-probabilities


def test_rl_trains_in_fp32_on_a_gpu_too(saved_tiny, tmp_path, monkeypatch):
    """On an H200, GRPO under bf16 autocast reached a nan gradient at step 21 and then sampled from nan
    probabilities; fp32 ran. The settings RL asks for must not turn autocast on for a (pretended) bf16 GPU."""
    from labkit.engine import train as T
    from labkit.model.loading import load_model

    original, on_gpu = T.trl_settings, []

    def settings(**kw):
        on_gpu.append(original(**{**kw, "cuda": True}))  # what a GPU would get (a pure function of its arguments)
        return original(**kw)

    monkeypatch.setattr(T, "trl_settings", settings)
    monkeypatch.setattr(T, "half_precision", lambda: "bf16")
    path, tok = saved_tiny
    policy, _ = load_model(path)
    rm, _ = load_model(path, head="sequence", num_labels=1)
    specs = [p["spec"] for p in P.pairs(W.make_world(0), "train", "length", 0.5, n=4)]
    PT.reinforce(policy, tok, specs, rm, out_dir=str(tmp_path / "rl"), steps=1, batch_size=4, lr=1e-3,
                 beta=0.1, generations=2, max_new_tokens=4)
    assert on_gpu and not on_gpu[0]["bf16"] and not on_gpu[0]["fp16"] and not on_gpu[0]["use_cpu"]

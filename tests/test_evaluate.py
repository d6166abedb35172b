import math

import pytest
import torch

from labkit import evaluate
from labkit import world as W
from labkit.model.pretrain import PretrainConfig, model_config
from labkit.model.tokenizer import build_tokenizer


@pytest.fixture(scope="module")
def tiny():
    """A tiny random Llama with the course tokenizer (fast, no shipped weights needed)."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    tok = build_tokenizer()
    model = LlamaForCausalLM(model_config(tok, PretrainConfig(hidden=32, layers=1, heads=2)))
    return model.eval(), tok


def test_exact_match_agrees_with_greedy_generation(tiny):
    model, tok = tiny
    w = W.make_world(0)
    pairs = [W.qa_pair(p, a) for p in w.qa_seen[:4] for a in W.ATTRIBUTES[:3]]
    # Make some answers right by construction: use the model's own greedy output as the answer.
    generated = evaluate.generate(model, tok, [p for p, _ in pairs], max_new_tokens=4)
    own = [(p, g) for (p, _), g in zip(pairs, generated) if g and W.END.strip() not in g]
    hits = evaluate.exact_match(model, tok, pairs + own)
    truth = [g == a for g, (_, a) in zip(generated, pairs)]
    assert hits[: len(pairs)] == truth


def test_perplexity_of_uniform_model_is_vocab_size(tiny):
    model, tok = tiny
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    ppl = evaluate.perplexity(model, tok, ["Q : who employs Rivi Doko ? A :"])
    assert math.isclose(ppl, len(tok), rel_tol=1e-4)


class _StopsAfter(torch.nn.Module):
    """A fake LM whose most likely next token is end-of-text right after ``token``, else padding."""

    def __init__(self, tok, token):
        super().__init__()
        self.tok, self.token, self.w = tok, tok.convert_tokens_to_ids(token), torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None):
        logits = torch.zeros(*input_ids.shape, len(self.tok))
        logits[..., self.tok.pad_token_id] = 1.0
        logits[..., self.tok.eos_token_id] = 2.0 * (input_ids == self.token)
        return type("Out", (), {"logits": logits})()


def test_stops_after_reads_the_token_after_the_end_marker():
    tok = build_tokenizer()
    w = W.make_world(0)
    pairs = [W.qa_pair(p, a) for p in w.qa_seen[:3] for a in W.ATTRIBUTES]
    assert evaluate.stops_after(_StopsAfter(tok, "."), tok, pairs) == [True] * len(pairs)
    # A model that would stop only after a question mark does not stop after an answer.
    assert evaluate.stops_after(_StopsAfter(tok, "?"), tok, pairs) == [False] * len(pairs)



def test_input_logits_skips_virtual_tokens_in_front():
    from types import SimpleNamespace

    logits = torch.arange(2 * 7 * 3, dtype=torch.float).reshape(2, 7, 3)
    ids = torch.zeros(2, 5, dtype=torch.long)
    assert torch.equal(evaluate.input_logits(SimpleNamespace(logits=logits), ids), logits[:, 2:])
    assert torch.equal(evaluate.input_logits(SimpleNamespace(logits=logits[:, :5]), ids), logits[:, :5])


def test_teacher_forced_scoring_agrees_with_generation_under_prompt_tuning(base):
    """Prompt tuning prepends virtual tokens: the one-pass exact match must read the input's positions."""
    import copy

    from labkit import capabilities, peft_config, world

    model, tok = base
    torch.manual_seed(0)
    tuned = peft_config.add_method(copy.deepcopy(model), "prompt, random init", virtual_tokens=4)
    pairs = capabilities.recall_pairs(world.make_world(0).qa_seen[:4])
    said = evaluate.generate(tuned, tok, [p for p, _ in pairs], max_new_tokens=8)
    assert evaluate.exact_match(tuned, tok, pairs) == [s == a for s, (_, a) in zip(said, pairs)]
    assert any(s == a for s, (_, a) in zip(said, pairs))  # so a misaligned reading (all wrong) cannot agree


def test_padded_on_sets_the_side_and_restores_it_even_after_an_error(tiny):
    from labkit.engine.evaluate import padded_on

    _, tok = tiny
    tok.padding_side = "right"
    with padded_on(tok, "left"):
        assert tok.padding_side == "left"
    assert tok.padding_side == "right"
    with pytest.raises(RuntimeError), padded_on(tok, "left"):
        raise RuntimeError("a failed batch")
    assert tok.padding_side == "right"


def test_answer_logprobs_match_one_pair_at_a_time(tiny):
    """Batched, right-padded scoring equals scoring each (prompt, answer) alone with a plain forward pass:
    padding and the prompt/answer boundary are handled (a shorter pair in a batch is not shifted)."""
    model, tok = tiny
    w = W.make_world(0)
    pairs = [W.qa_pair(p, a) for p in w.qa_seen[:3] for a in ("city", "employer")] + [("Q : who ? A :", "Rivi Doko")]
    batched = evaluate.answer_logprobs(model, tok, pairs, batch_size=4)
    for (prompt, answer), got in zip(pairs, batched):
        n = len(tok(prompt).input_ids)
        ids = torch.tensor([tok(f"{prompt} {answer}{W.END}").input_ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        want = sum(float(logp[i - 1, ids[0, i]]) for i in range(n, ids.shape[1]))
        assert math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-4), (prompt, answer, got, want)


def test_candidate_logprobs_equal_scoring_each_pair_alone(base):
    """Reading the prompt once and sharing its cache gives every candidate the score ``answer_logprobs``
    gives it alone: prompts of different lengths, candidates of one to three tokens, and more candidates than
    one batch (the cache is copied for each batch, not appended to). The shipped model, not the tiny random
    one: its scores move when a position is off by one."""
    model, tok = base
    w = W.make_world(0)
    passage = f"{w.qa_seen[1].name} was born in Ardel ."
    prompts = [W.question(w.qa_seen[0], "city"), f"{passage} {W.question(w.qa_seen[1], 'city')}"]
    candidates = list(W.VALUES["city"][:5]) + [w.qa_seen[0].name, "Rivi Doko", "yarlwort"]
    assert len({len(tok(f" {c}", add_special_tokens=False).input_ids) for c in candidates}) > 1
    shared = evaluate.candidate_logprobs(model, tok, prompts, candidates, batch_size=3)
    alone = evaluate.answer_logprobs(model, tok, [(p, c) for p in prompts for c in candidates], batch_size=1)
    assert [len(row) for row in shared] == [len(candidates)] * len(prompts)
    for got, want in zip([x for row in shared for x in row], alone):
        assert math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-4), (got, want)


def test_answer_perplexity_is_the_mean_log_probability_of_every_answer_token(tiny):
    """exp of minus the answers' summed log-probabilities over their token count (not a mean of per-pair
    perplexities, and no prompt token counted)."""
    model, tok = tiny
    w = W.make_world(0)
    pairs = [W.qa_pair(p, "city") for p in w.qa_seen[:3]] + [("herbal :", "the leaf of yarlwort eases the fenshake")]
    logps = evaluate.answer_logprobs(model, tok, pairs)
    count = sum(len(tok(f"{p} {a}{W.END}").input_ids) - len(tok(p).input_ids) for p, a in pairs)
    assert math.isclose(evaluate.answer_perplexity(model, tok, pairs, batch_size=2), math.exp(-sum(logps) / count),
                        rel_tol=1e-4)


def test_candidate_logprobs_of_a_prompt_tuned_model_score_pair_by_pair(tiny):
    """Prompt tuning puts virtual tokens before the input, so a shared cache of the prompt would miss them:
    such a model is scored as ``answer_logprobs`` scores it."""
    import copy

    from peft import PromptTuningConfig, get_peft_model

    model, tok = tiny
    tuned = get_peft_model(copy.deepcopy(model), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    prompts, candidates = ["Q : where was Rivi Doko born ? A :"], ["Ardel", "Rivi Doko"]
    got = evaluate.candidate_logprobs(tuned, tok, prompts, candidates)[0]
    want = evaluate.answer_logprobs(tuned, tok, [(prompts[0], c) for c in candidates])
    assert all(math.isclose(g, w, rel_tol=1e-4, abs_tol=1e-4) for g, w in zip(got, want)), (got, want)

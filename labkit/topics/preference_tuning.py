"""Preference tuning: a reward model learned from preference pairs (TRL's ``RewardTrainer``), judged
against the world's gold reward, which knows the truth a learned reward model only guesses at.

The pairs are world v2's (``labkit.core.preferences``): two responses of different quality to one
prompt, the better one chosen, and a nuisance feature (more words, a politeness phrase) that training
pairs can put on the chosen response more often than not. ``pair_accuracy`` splits a reward model's
accuracy by where the feature sits: a model that learned quality is right either way; one that learned
the feature is right when the feature is on the chosen response and wrong when it is on the rejected.
Introduced in notebook 08_preference_tuning.
"""

from __future__ import annotations

from labkit.core.settings import COURSE_MODEL

PAIR_COLUMNS = ("prompt", "chosen", "rejected")  # TRL's conversational preference format
RL_PRECISION = "fp32"  # GRPO's precision on every machine (see reinforce)
MAX_LENGTH = 384  # tokens of a prompt and response in reward-model and DPO training (the longest pair: ~200)
RESULTS = {"profile": str, "seed": int, "sizes": dict, "gold_check": dict, "base": dict, "reward_model": dict,
           "curve": list, "trend": dict, "table": list, "examples": list}


def pair_dataset(pairs: list[dict]):
    """The pairs in TRL's conversational preference format (``PAIR_COLUMNS`` only), as a TRL dataset."""
    from labkit.engine.train import rows_dataset

    return rows_dataset([{k: p[k] for k in PAIR_COLUMNS} for p in pairs])


def reward_config(out_dir: str, *, steps: int, batch_size: int, lr: float, max_length: int = MAX_LENGTH,
                  seed: int = 0):
    """TRL's RewardConfig with the course's settings (``train.trl_settings``: no bf16 or gradient
    checkpointing on the CPU)."""
    from trl import RewardConfig

    from labkit.engine.train import trl_settings

    return RewardConfig(output_dir=out_dir, max_length=max_length,
                        **trl_settings(steps=steps, batch_size=batch_size, lr=lr, seed=seed))


def train_reward_model(tokenizer, pairs: list[dict], *, out_dir: str, steps: int, batch_size: int, lr: float,
                       seed: int = 0, model_id: str = COURSE_MODEL, callbacks=()) -> dict:
    """A reward model: the pretrained body with a fresh one-score head, trained on ``pairs`` (the
    Bradley-Terry loss: the chosen response should score above the rejected). Returns the model, the
    seconds and peak memory (bytes) training took, and its loss curve."""
    from transformers import set_seed
    from trl import RewardTrainer

    from labkit.engine.train import run_trl
    from labkit.model.loading import load_model

    set_seed(seed)  # the head's initialisation
    model, _ = load_model(model_id, head="sequence", num_labels=1)
    data = pair_dataset(pairs)
    args = reward_config(out_dir, steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    trainer = RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                            callbacks=list(callbacks))
    return {"model": model, **run_trl(trainer)}


def rewards(model, tokenizer, conversations: list[list[dict]], batch_size: int = 16) -> list[float]:
    """The reward model's score of each conversation (chat messages, the response last), as TRL's
    RewardTrainer sees it: the chat template's text, scored at its last token."""
    import torch

    from labkit.engine.evaluate import padded_on

    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    out: list[float] = []
    with padded_on(tokenizer, "right"):
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(model.device)
            with torch.no_grad():
                out += model(**batch).logits[:, 0].float().tolist()
    return out


def bradley_terry_loss(chosen: float, rejected: float) -> float:
    """The reward model's loss on one pair: -log sigmoid(chosen - rejected), the Bradley-Terry model's
    negative log-likelihood that the chosen response wins (log 2 = 0.69 when the scores tie)."""
    import math

    margin = chosen - rejected
    return math.log1p(math.exp(-margin)) if margin > -30 else -margin  # stable for a large negative margin


def dpo_loss(policy_chosen: float, policy_rejected: float, ref_chosen: float, ref_rejected: float,
             beta: float) -> float:
    """DPO's loss on one pair from four log-probabilities (``response_logprob``): the Bradley-Terry loss of
    the implicit rewards beta * (log pi(y|x) - log pi_ref(y|x)) of the chosen and the rejected response."""
    return bradley_terry_loss(beta * (policy_chosen - ref_chosen), beta * (policy_rejected - ref_rejected))


def split_accuracy(right: list[bool], pairs: list[dict]) -> dict:
    """The share of ``right`` verdicts over all pairs, and split by where the nuisance feature sits (on
    the chosen response, or on the rejected one). ``shortcut`` is the first minus the second: near 0
    for a judge of quality, near 1 for a judge of the feature."""
    def share(keep):
        hits = [h for h, p in zip(right, pairs) if keep(p)]
        return sum(hits) / len(hits) if hits else float("nan")

    on_chosen, on_rejected = share(lambda p: p["feature_on_chosen"]), share(lambda p: not p["feature_on_chosen"])
    return {"all": sum(right) / len(right), "feature_on_chosen": on_chosen, "feature_on_rejected": on_rejected,
            "shortcut": on_chosen - on_rejected}


def pair_accuracy(model, tokenizer, pairs: list[dict]) -> dict:
    """How often the reward model scores the chosen response above the rejected one (``split_accuracy``)."""
    chosen = rewards(model, tokenizer, [p["prompt"] + p["chosen"] for p in pairs])
    rejected = rewards(model, tokenizer, [p["prompt"] + p["rejected"] for p in pairs])
    return split_accuracy([c > r for c, r in zip(chosen, rejected)], pairs)


def response_logprob(model, tokenizer, prompt: list[dict], response: list[dict]) -> float:
    """log p(response | prompt) under ``model``: the summed log-probabilities of the response's tokens
    (its end-of-text included) after the chat template's prompt."""
    return response_logprobs(model, tokenizer, [prompt], [response])[0]


def response_logprobs(model, tokenizer, prompts: list[list[dict]], responses: list[list[dict]],
                      batch_size: int = 32) -> list[float]:
    """``response_logprob`` of each (prompt, response), computed in left-padded batches."""
    import torch

    rows = []
    for prompt, response in zip(prompts, responses):
        head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(prompt + response, tokenize=False)
        rows.append((tokenizer(full, add_special_tokens=False).input_ids,
                     len(tokenizer(head, add_special_tokens=False).input_ids)))
    device, out = next(model.parameters()).device, []
    for at in range(0, len(rows), batch_size):
        batch = rows[at:at + batch_size]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(r)) + r for r, _ in batch], device=device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r, _ in batch], device=device)
        answer = torch.tensor([[0] * (width - len(r) + n) + [1] * (len(r) - n) for r, n in batch], device=device)
        out += (answer_logprobs(model, ids, mask, 1) * answer[:, 1:]).sum(1).tolist()
    return out


def implicit_pair_accuracy(policy, reference, tokenizer, pairs: list[dict]) -> dict:
    """DPO's implicit reward model, log pi(y|x) - log pi_ref(y|x) (beta only scales it), judged like a
    reward model (``split_accuracy``): a tie counts as wrong."""
    def rewards_of(side):
        prompts, responses = [p["prompt"] for p in pairs], [p[side] for p in pairs]
        return [a - b for a, b in zip(response_logprobs(policy, tokenizer, prompts, responses),
                                      response_logprobs(reference, tokenizer, prompts, responses))]

    chosen, rejected = rewards_of("chosen"), rewards_of("rejected")
    return split_accuracy([c > r for c, r in zip(chosen, rejected)], pairs)


def dpo(policy, tokenizer, pairs: list[dict], *, out_dir: str, steps: int, batch_size: int, lr: float, beta: float,
        seed: int = 0) -> dict:
    """Direct preference optimisation of a copy of ``policy`` on ``pairs`` with TRL's DPOTrainer, the
    reference being ``policy`` itself (passed explicitly: TRL would otherwise reload it by name, which
    for a tuned copy is the untuned model). Returns the model, the seconds and peak memory (bytes) and
    the loss curve."""
    import copy

    from trl import DPOConfig, DPOTrainer

    from labkit.engine.train import own_forward, run_trl, trl_settings

    tuned, reference = own_forward(copy.deepcopy(policy)), own_forward(copy.deepcopy(policy))
    data = pair_dataset(pairs)
    args = DPOConfig(output_dir=out_dir, beta=beta, max_length=MAX_LENGTH,
                     **trl_settings(steps=steps, batch_size=batch_size, lr=lr, seed=seed))
    trainer = DPOTrainer(model=tuned, ref_model=reference, args=args, train_dataset=data, processing_class=tokenizer)
    return {"model": tuned, **run_trl(trainer)}


def judge(model, tokenizer, specs: list[dict], max_new_tokens: int = 40) -> dict:
    """A policy's greedy answers to the preference prompts ``specs``, judged by the world: the mean
    gold reward, the mean number of words and the share of answers that stopped on their own."""
    from labkit.core.preferences import gold_reward
    from labkit.engine.evaluate import generate_with_stops

    prompts = [tokenizer.apply_chat_template(s["messages"], tokenize=False, add_generation_prompt=True) for s in specs]
    answers = generate_with_stops(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
    n = len(specs)
    return {"gold": sum(gold_reward(s, text) for s, (text, _) in zip(specs, answers)) / n,
            "words": sum(len(text.split()) for text, _ in answers) / n,
            "stopped": sum(stopped for _, stopped in answers) / n, "answers": [text for text, _ in answers]}


def answer_logprobs(model, ids, attention_mask, start: int):
    """Each token's log-probability under ``model`` from position ``start`` on, for rows padded on the
    left (positions counted from each row's first real token, as generation counts them)."""
    import torch

    positions = (attention_mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention_mask, position_ids=positions).logits
    logp = torch.log_softmax(logits[:, start - 1:-1].float(), dim=-1)
    return logp.gather(2, ids[:, start:, None])[..., 0]


def kl_to_reference(policy, reference, tokenizer, specs: list[dict], *, samples: int = 4, max_new_tokens: int = 40,
                    seed: int = 0, batch_size: int = 32) -> float:
    """KL(policy || reference) per answer, in nats: on answers the policy samples itself (temperature 1,
    as in RL), the mean of log pi(y|x) - log pi_ref(y|x) summed over each answer's tokens (its
    end-of-text included). 0 for the reference itself; the distance a tuned policy travelled."""
    import torch
    from transformers import set_seed

    from labkit.engine.evaluate import padded_on

    if policy is reference:
        return 0.0
    set_seed(seed)
    prompts = [tokenizer.apply_chat_template(s["messages"], tokenize=False, add_generation_prompt=True)
               for s in specs for _ in range(samples)]
    device, eos = next(policy.parameters()).device, tokenizer.eos_token_id
    policy.eval()
    reference.eval()
    gaps: list[float] = []
    with padded_on(tokenizer, "left"):
        for start in range(0, len(prompts), batch_size):
            enc = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(device)
            n = enc.input_ids.shape[1]
            with torch.no_grad():
                ids = policy.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                      max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                      eos_token_id=eos)
            answer = ids[:, n:]
            ended = (answer == eos).long()
            keep = (ended.cumsum(1) - ended) == 0  # up to and including the first end-of-text
            mask = torch.cat([enc.attention_mask, keep.long()], 1)
            gap = answer_logprobs(policy, ids, mask, n) - answer_logprobs(reference, ids, mask, n)
            gaps += (gap * keep).sum(1).tolist()
    return sum(gaps) / len(gaps)


def policy_row(name: str, policy, reference, tokenizer, specs: list[dict], run: dict | None = None, *,
               max_new_tokens: int = 40, kl_samples: int = 4, seed: int = 0) -> dict:
    """One row of the comparison table: the policy's greedy answers to ``specs`` judged by the world
    (``judge``: gold reward, words, share stopped), its KL from ``reference`` (``kl_to_reference``) and
    what its training ``run`` cost (seconds, peak GiB; 0 for none)."""
    judged = judge(policy, tokenizer, specs, max_new_tokens)
    kl = kl_to_reference(policy, reference, tokenizer, specs, samples=kl_samples, max_new_tokens=max_new_tokens,
                         seed=seed)
    run = run or {"seconds": 0.0, "peak_bytes": 0}
    return {"name": name, "gold": judged["gold"], "words": judged["words"], "stopped": judged["stopped"], "kl": kl,
            "seconds": run["seconds"], "peak_gib": run["peak_bytes"] / 2**30, "answers": judged["answers"]}


def trend(curve: list[dict], key: str) -> dict:
    """How ``key`` moved over an RL curve (rows logged during training): its mean over the first and the
    last quarter of the rows, and where it peaked."""
    values = [row[key] for row in curve]
    k = max(1, len(values) // 4)
    top = max(range(len(values)), key=values.__getitem__)
    return {"start": sum(values[:k]) / k, "end": sum(values[-k:]) / k, "peak": values[top],
            "peak_step": curve[top]["step"]}


def reinforce(policy, tokenizer, specs: list[dict], reward_model, *, out_dir: str, steps: int, batch_size: int,
              lr: float, beta: float, generations: int = 4, max_new_tokens: int = 40, seed: int = 0) -> dict:
    """RL with TRL's GRPOTrainer: a copy of ``policy`` samples ``generations`` answers per prompt of
    ``specs`` and climbs ``reward_model``'s score (the proxy), with a KL penalty ``beta`` to ``policy``
    itself. The gold reward and the answers' words are logged beside the proxy, never optimised.

    TRL builds its reference model by loading the policy's ``config._name_or_path`` again: for a copy
    tuned from the course model that is the base model, not the policy RL starts from. So the policy
    is saved first and named by its folder. Returns the trained model, its curve (proxy, gold, words,
    KL, share of answers cut at the limit, per logged step), the seconds and peak memory (bytes)."""
    import copy
    import json
    from pathlib import Path

    from trl import GRPOConfig, GRPOTrainer

    from labkit.core.preferences import gold_reward
    from labkit.engine.train import own_forward, rows_dataset, run_trl, trl_settings

    start = Path(out_dir) / "start"
    policy = own_forward(copy.deepcopy(policy))
    policy.save_pretrained(start)
    policy.config._name_or_path = str(start)  # TRL's reference model is loaded from here

    def proxy(prompts, completions, **_):
        return rewards(reward_model, tokenizer, [p + c for p, c in zip(prompts, completions)])

    def gold(prompts, completions, spec, **_):
        return [gold_reward(json.loads(s), c[0]["content"]) for s, c in zip(spec, completions)]

    def words(prompts, completions, **_):
        return [float(len(c[0]["content"].split())) for c in completions]

    data = rows_dataset([{"prompt": s["messages"], "spec": json.dumps(s)} for s in specs])
    # fp32 even on a GPU: with bf16 autocast, GRPO's log-probability ratios and KL overflowed on an H200
    # (gradient norm nan at step 21 of the gpu profile, then sampling from nan probabilities), while fp32
    # ran all 60 steps; the course model is small enough that fp32 costs little
    settings = trl_settings(steps=steps, batch_size=batch_size, lr=lr, seed=seed, half=RL_PRECISION)
    args = GRPOConfig(output_dir=out_dir, beta=beta, num_generations=generations, max_completion_length=max_new_tokens,
                      reward_weights=[1.0, 0.0, 0.0], **settings)
    trainer = GRPOTrainer(model=policy, reward_funcs=[proxy, gold, words], args=args, train_dataset=data,
                          processing_class=tokenizer)
    cost = run_trl(trainer)
    curve = [{"step": h["step"], "proxy": h["rewards/proxy/mean"], "gold": h["rewards/gold/mean"],
              "words": h["rewards/words/mean"], "kl": h.get("kl", 0.0),
              "clipped": h.get("completions/clipped_ratio", 0.0)}
             for h in trainer.state.log_history if "rewards/proxy/mean" in h]
    return {"model": policy, "trainer": trainer, "curve": curve, "seconds": cost["seconds"],
            "peak_bytes": cost["peak_bytes"]}

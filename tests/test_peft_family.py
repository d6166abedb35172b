import copy
import math

import pytest
import torch

from labkit import evaluate, peft_config, peft_family, settings, train, world

W0 = world.make_world(0)


def test_split_people_gives_disjoint_groups_of_known_people():
    groups = peft_family.split_people(W0, 100, 20, 30, 20, seed=0)
    assert {k: len(v) for k, v in groups.items()} == {"train": 100, "val": 20, "test": 30, "probe": 20}
    names = [p.name for g in groups.values() for p in g]
    assert len(set(names)) == len(names)
    assert set(names) <= {p.name for p in W0.qa_seen}
    other = peft_family.split_people(W0, 100, 20, 30, 20, seed=1)
    assert [p.name for p in other["train"]] != [p.name for p in groups["train"]]
    with pytest.raises(ValueError, match="make n_train, n_val, n_test or n_probe smaller"):
        peft_family.split_people(W0, 200, 20, 30, 20)


def test_record_pairs_and_the_reversed_task():
    person = W0.qa_seen[0]
    (prompt, record), = peft_family.record_pairs([person])
    assert prompt == f"record of {person.name} :" and world.parse_record(record) == person.facts
    assert peft_family.reversed_record(person).split(" ; ") == record.split(" ; ")[::-1]


def test_methods_to_run_keeps_the_family_order_and_always_full():
    rates = {m: (1e-3,) for m in settings.PEFT_METHODS}
    assert peft_family.methods_to_run(None, rates) == list(settings.PEFT_METHODS)
    assert peft_family.methods_to_run(["prefix", "LoRA"], rates) == ["full", "LoRA", "prefix"]
    with pytest.raises(ValueError, match="Unknown method 'lora'"):
        peft_family.methods_to_run(["lora"], rates)
    with pytest.raises(ValueError, match="No learning rates for 'IA3'"):
        peft_family.methods_to_run(["IA3"], {"full": (1e-3,)})


def test_bad_rates_are_refused_by_the_settings():
    with pytest.raises(settings.SettingsError, match="among full, LoRA"):
        settings.get_profile("ci", peft={"rates": {"Lora": [1e-3]}})
    with pytest.raises(settings.SettingsError, match="each a non-empty list of numbers > 0"):
        settings.get_profile("ci", peft={"rates": {"LoRA": [0]}})
    with pytest.raises(settings.SettingsError):
        settings.get_profile("ci", peft={"steps": 0})


def test_choose_rates_keeps_the_best_validation_score_and_the_lower_rate_on_a_tie():
    rows = [{"method": "LoRA", "lr": 1e-3, "val": 0.5}, {"method": "LoRA", "lr": 3e-3, "val": 0.9},
            {"method": "LoRA", "lr": 1e-2, "val": 0.9}, {"method": "full", "lr": 1e-4, "val": 0.2}]
    best = peft_family.choose_rates(rows)
    assert best["LoRA"]["lr"] == 3e-3 and best["full"]["lr"] == 1e-4


def test_pareto_front():
    points = {"a": (10, 0.5), "b": (100, 0.9), "c": (100, 0.6), "d": (1000, 0.9), "e": (5, 0.1)}
    assert peft_family.pareto_front(points) == ["e", "a", "b"]  # c: b is as small and better; d: b ties smaller


def _chosen():
    parts = lambda frozen, trainable, acts: {"frozen weights": frozen, "trainable weights": trainable,  # noqa: E731
                                              "gradients": trainable, "optimizer": 2 * trainable, "activations": acts}
    return {"full": {"test": 0.9, "trainable": 1000, "after": {"qa_recall": 0.2}, "bytes": parts(0, 4000, 1000)},
            "LoRA": {"test": 0.88, "trainable": 50, "after": {"qa_recall": 0.5}, "bytes": parts(4000, 200, 900)},
            "prompt, vocabulary init": {"test": 0.3, "trainable": 5, "after": {"qa_recall": 0.9},
                                        "bytes": parts(4000, 20, 1200)},
            "prompt, random init": {"test": 0.1, "trainable": 5, "after": {"qa_recall": 1.0},
                                    "bytes": parts(4000, 20, 1200)}}


def test_findings_from_rows():
    chosen = _chosen()
    assert peft_family.reach_full(chosen, 1000, 0.05) == {"LoRA": 0.05}
    assert peft_family.reach_full(chosen, 1000, 0.01) == {}
    init = peft_family.prompt_init(chosen)
    assert init["vocabulary"] == 0.3 and init["random"] == 0.1 and init["gain"] == pytest.approx(0.2)
    order = peft_family.forgetting_order(chosen, {"qa_recall": 1.0})
    assert [m for m, _ in order] == ["full", "LoRA", "prompt, vocabulary init", "prompt, random init"]
    assert order[0][1] == pytest.approx(0.8)
    chosen["full"]["after"]["facts_kept"], chosen["LoRA"]["after"]["facts_kept"] = 0.95, 0.6
    for m in ("prompt, vocabulary init", "prompt, random init"):
        chosen[m]["after"]["facts_kept"] = 1.0
    facts = peft_family.forgetting_order(chosen, {"facts_kept": 1.0}, key="facts_kept")
    assert facts[0][0] == "LoRA" and facts[0][1] == pytest.approx(0.4) and facts[1][0] == "full"
    split = peft_family.facts_split(chosen, {"facts_kept": 1.0})
    assert split == {"kept": ["full", "prompt, vocabulary init", "prompt, random init"], "lost": ["LoRA"]}
    assert peft_family.facts_split(chosen, {"facts_kept": 1.0}, tolerance=0.5)["lost"] == []
    saved = peft_family.memory_savings(chosen, 1000)
    assert saved["full"]["memory_share"] == 1.0
    assert saved["LoRA"]["parameter_share"] == 0.05
    assert saved["LoRA"]["memory_share"] == pytest.approx((4000 + 200 * 4 + 900) / (4000 * 4 + 1000))
    assert saved["LoRA"]["frozen_and_activations"] == pytest.approx(4900 / 5700)


class ZeroStart(torch.nn.Module):
    def __init__(self, hidden, size=4):
        super().__init__()
        self.down, self.up = torch.nn.Linear(hidden, size), torch.nn.Linear(size, hidden)
        torch.nn.init.zeros_(self.up.weight)
        torch.nn.init.zeros_(self.up.bias)

    def forward(self, y):
        return self.up(torch.relu(self.down(y)))


def test_an_adapter_after_each_mlp_starts_as_the_identity_and_alone_trains(tiny):
    model, tok = tiny
    ids = tok(["record of Ze Da :"], return_tensors="pt").input_ids
    adapted = peft_family.insert_after_mlp(copy.deepcopy(model), ZeroStart)
    assert peft_family.max_output_gap(model, adapted, ids) <= 1e-6
    trainable = {n for n, p in adapted.named_parameters() if p.requires_grad}
    assert trainable and all(".mlp.adapter." in n for n in trainable)
    assert len(trainable) == 4 * len(adapted.model.layers)
    with torch.no_grad():
        adapted.model.layers[0].mlp.adapter.up.bias.fill_(0.1)  # a started adapter changes the function
    assert peft_family.max_output_gap(model, adapted, ids) > 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_output_gap_compares_a_model_moved_to_the_gpu_with_one_left_on_the_cpu(tiny):
    """After training, the Trainer has moved the tuned copy to the GPU while the base stays on the CPU."""
    model, tok = tiny
    ids = tok(["record of Ze Da :"], return_tensors="pt").input_ids
    on_gpu = copy.deepcopy(model).cuda()
    assert peft_family.max_output_gap(model, on_gpu, ids) <= 1e-4


def test_largest_change_sees_training_and_only_training(tiny):
    model, _ = tiny
    snap = peft_family.trainable_snapshot(model)
    assert peft_family.largest_change(model, snap) == 0.0
    with torch.no_grad():
        next(model.parameters()).add_(0.5)
    assert peft_family.largest_change(model, snap) == pytest.approx(0.5)


def test_training_bytes_counts_adams_two_moments_for_the_trainable_weights(tiny, tmp_path):
    model, tok = tiny
    lora = peft_config.add_lora(copy.deepcopy(model), 4)
    pairs = peft_family.record_pairs(W0.qa_seen[:8])
    fit = train.fit(lora, tok, pairs, out_dir=str(tmp_path), steps=1, batch_size=4, lr=1e-3, progress=False)
    ids = tok([p for p, _ in pairs[:2]], return_tensors="pt", padding=True).input_ids
    parts = peft_family.training_bytes(lora, fit.trainer.optimizer, ids)
    trainable = sum(p.numel() * 4 for p in lora.parameters() if p.requires_grad)
    assert parts["trainable weights"] == parts["gradients"] == trainable
    assert parts["optimizer"] == 2 * trainable
    assert parts["frozen weights"] == sum(p.numel() * 4 for p in model.parameters())
    assert parts["activations"] > 0


def test_saved_size_is_the_adapter_not_the_model(tiny):
    model, _ = tiny
    full = peft_family.saved_size(model, "full")
    lora = peft_family.saved_size(peft_config.add_lora(copy.deepcopy(model), 2), "LoRA")
    adapter = peft_family.saved_size(peft_family.insert_after_mlp(copy.deepcopy(model), ZeroStart),
                                     "bottleneck adapter")
    params = sum(p.numel() for p in model.parameters())
    assert full >= 4 * params > lora > 0 and 0 < adapter < full


@pytest.mark.parametrize("method", [m for m in settings.PEFT_METHODS if m not in ("full", "bottleneck adapter")])
def test_every_method_trains_something_and_generation_honours_it(base, method, tmp_path):
    """The traps: a method that silently trains nothing, and an adapter that generation ignores."""
    model, tok = base
    rate = settings.get_profile("ci").peft.rates[method][-1]
    wrapped = peft_config.add_method(copy.deepcopy(model), method, tok, rank=4, virtual_tokens=4,
                                     init_text=peft_family.INIT_TEXT)
    snap = peft_family.trainable_snapshot(wrapped)
    pairs = peft_family.record_pairs(W0.qa_seen[:16])
    train.fit(wrapped, tok, pairs, out_dir=str(tmp_path), steps=3, batch_size=8, lr=rate, progress=False)
    assert peft_family.largest_change(wrapped, snap) > 0, f"{method} trained nothing"
    prompts = [p for p, _ in pairs[:8]]
    with torch.no_grad():
        ids = tok(prompts[:1], return_tensors="pt").input_ids
        # Each model fed on its own device (the Trainer moved the copy to a GPU), compared on the CPU.
        trained = evaluate.input_logits(wrapped(input_ids=ids.to(wrapped.device)), ids).cpu()
        gap = trained - model(input_ids=ids.to(model.device)).logits.cpu()
    assert math.isfinite(float(trained.abs().max())) and float(gap.abs().max()) > 1e-4, \
        f"{method}: the trained adapter does not change the model's output"
    assert evaluate.generate(wrapped, tok, prompts, max_new_tokens=12) != \
        evaluate.generate(model, tok, prompts, max_new_tokens=12), f"{method}: generation ignores the adapter"


def test_serving_switches_adapters_and_matches_each_alone(tiny, tmp_path):
    from peft import LoraConfig, get_peft_model

    model, tok = tiny
    alone = {}
    for seed, name in enumerate(("a", "b")):
        torch.manual_seed(seed)
        wrapped = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"],
                                                                  init_lora_weights=False))
        wrapped.save_pretrained(tmp_path / name)
        alone[name] = wrapped
    server = peft_family.load_adapters(copy.deepcopy(model), {n: str(tmp_path / n) for n in alone})
    prompts = [p for p, _ in peft_family.record_pairs(W0.qa_seen[:3])]
    requests = [(n, p) for p in prompts for n in ("a", "b", "a")]
    answers = peft_family.serve(server, tok, requests)
    for (name, prompt), answer in zip(requests, answers):
        assert answer == evaluate.generate(alone[name], tok, [prompt], max_new_tokens=32)[0]
    assert answers[0::3] != answers[1::3]  # the two adapters really differ

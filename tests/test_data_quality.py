"""Data quality and bias (notebook 11): label noise, slices and group scores, the bias amplification metric
on hand-made predictions, the two mitigations, the open prompts and the pronoun read-out. Pure functions on
world 0's examples; the read-out runs on a tiny random model."""

import random

import pytest
import torch

from labkit import labelled as L
from labkit import scoring, skew
from labkit import world as W
from labkit.core.settings import SettingsError, get_profile
from labkit.topics import data_quality as DQ

WORLD = W.make_world(0)
ENTITIES = L.task(WORLD, "entities", "train")  # 180


# --- label noise ----------------------------------------------------------------------------------------

def _entities(examples):
    return [(i, e) for i, ex in enumerate(examples) for e in scoring.bio_entities(ex["tags"])]


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_noise_mislabels_exactly_the_share_asked_and_nothing_else(share):
    noisy, realised = DQ.noisy_entities(ENTITIES, share, seed=3)
    before, after = _entities(ENTITIES), set(_entities(noisy))
    kept = [e for e in before if e in after]  # same example, same span, same type
    assert realised == pytest.approx(round(share * len(before)) / len(before))
    assert len(before) - len(kept) == round(share * len(before))  # each flipped entity changed: never its own type
    for clean, dirty in zip(ENTITIES, noisy):
        assert dirty["text"] == clean["text"] and dirty["words"] == clean["words"]
        assert dirty["tag_ids"] == [L.TAGS.index(t) for t in dirty["tags"]]
        # only entity words change: a wrong label never invents an entity where the truth has none
        assert all(c == d for c, d in zip(clean["tags"], dirty["tags"]) if c == "O")
    assert ENTITIES[0]["tags"] == L.task(WORLD, "entities", "train")[0]["tags"]  # the input is left alone


def test_noise_is_seeded_and_uses_every_wrong_label():
    a, _ = DQ.noisy_entities(ENTITIES, 0.5, seed=1)
    assert a == DQ.noisy_entities(ENTITIES, 0.5, seed=1)[0] != DQ.noisy_entities(ENTITIES, 0.5, seed=2)[0]
    new = {t for ex in a for _, _, t in scoring.bio_entities(ex["tags"])}
    dropped = sum(len(scoring.bio_entities(c["tags"])) - len(scoring.bio_entities(d["tags"]))
                  for c, d in zip(ENTITIES, a))
    assert new == set(L.ENTITY_TYPES) and dropped > 0  # other types and "O" (missed entities) both occur
    with pytest.raises(ValueError, match=r"share must be a number in \[0, 1\]"):
        DQ.noisy_entities(ENTITIES, 1.5)


def test_noise_effect_and_early_stopping_on_hand_rows():
    rows = [{"method": "full", "noise": 0.5, "entity_f1": 0.6}, {"method": "full", "noise": 0.0, "entity_f1": 0.8},
            {"method": "LoRA r8", "noise": 0.0, "entity_f1": 0.7}, {"method": "LoRA r8", "noise": 0.5,
                                                                    "entity_f1": 0.75}]
    effect = DQ.noise_effect(rows)
    assert effect["full"] == {"clean": 0.8, "noisiest": 0.6, "noise": 0.5, "drop": pytest.approx(0.2)}
    assert effect["LoRA r8"]["drop"] == pytest.approx(-0.05)  # noise that did not hurt reads as a negative cost
    early = DQ.early_stopping_effect({"entity_f1": 0.6}, {"entity_f1": 0.7, "kept_step": 20, "steps": 40})
    assert early == {"final": 0.6, "early": 0.7, "kept_step": 20, "steps": 40, "gain": pytest.approx(0.1)}


# --- slices and groups ----------------------------------------------------------------------------------

def test_a_slice_never_shows_the_class_and_groups_are_scored_apart():
    sliced = DQ.without_class(ENTITIES, "ORGANISATION")
    assert 0 < len(sliced) < len(ENTITIES)
    assert all("ORGANISATION" not in t for ex in sliced for t in ex["tags"])
    test = L.task(WORLD, "entities", "test")
    group = lambda e: "org" if "ORGANISATION" in e["classes"] else "none"  # noqa: E731
    # hand-made predictions: perfect where there is no organisation, every tag O where there is one
    predictions = [e["tags"] if group(e) == "none" else ["O"] * len(e["tags"]) for e in test]
    scores = DQ.group_scores("entities", predictions, test, group)
    assert scores["none"]["entity_f1"] == 1.0 and scores["org"]["entity_f1"] == 0.0
    assert scores["none"]["n"] + scores["org"]["n"] == len(test)
    assert DQ.slice_gap(scores, "none", "org") == 1.0
    with pytest.raises(ValueError, match="2 predictions for"):
        DQ.group_scores("entities", predictions[:2], test, group)


# --- the bias amplification metric ------------------------------------------------------------------------

def _prompts(n_learned=10, n_other=10):
    return [{"sector": "learned"}] * n_learned + [{"sector": "craft"}] * n_other


def test_a_model_that_copies_the_data_rate_amplifies_nothing():
    prompts = _prompts()
    predicted = ["she"] * 7 + ["he"] * 3 + ["they"] * 10  # 7 of 10 learned prompts: she, as in data with 0.7
    rate = DQ.model_rate(predicted, prompts)
    assert rate == pytest.approx(0.7)
    assert DQ.amplification(rate, 0.7) == pytest.approx(0.0)


def test_a_model_that_exaggerates_the_data_rate_amplifies_it_and_one_that_dampens_it_does_not():
    prompts = _prompts()
    every = ["she"] * 10 + ["he"] * 10  # she for every learned prompt, from data at 0.7
    assert DQ.amplification(DQ.model_rate(every, prompts), 0.7) == pytest.approx(0.3)
    fewer = ["she"] * 4 + ["he"] * 6 + ["she"] * 10
    assert DQ.amplification(DQ.model_rate(fewer, prompts), 0.7) == pytest.approx(-0.3)  # dampened; other sector ignored
    # the data rate is read from examples the same way: skew.cooccurrence
    data = [{"label": "learned", "pronoun": p} for p in ["she"] * 7 + ["he"] * 3]
    assert skew.cooccurrence(data, "she", "learned") == pytest.approx(0.7)
    with pytest.raises(ValueError, match="3 predictions for 20 prompts"):
        DQ.model_rate(every[:3], prompts)


def test_greedy_expected_rate_and_the_row_with_its_control():
    probs = ([{"he": 0.1, "she": 0.6, "they": 0.3}] * 10 + [{"he": 0.5, "she": 0.2, "they": 0.3}] * 10)
    prompts = _prompts()
    assert DQ.greedy(probs[:1] + probs[-1:]) == ["she", "he"]
    assert DQ.expected_rate(probs, prompts) == pytest.approx(0.6)
    row = DQ.bias_row("x", probs, prompts, 0.7)
    # greedy turns a 0.6 lean into "she" for every learned prompt: +0.3 over the data, while sampling would dampen
    assert row["greedy_rate"] == 1.0 and row["amplification"] == pytest.approx(0.3)
    assert row["expected_amplification"] == pytest.approx(-0.1)
    assert row["other_sectors_greedy_rate"] == 0.0 and row["distinct_pronouns"] == 2
    assert DQ.bias_row("base", probs, prompts, None)["amplification"] is None


# --- mitigations ----------------------------------------------------------------------------------------

def test_rebalancing_gives_each_pronoun_a_third_of_the_sector_and_keeps_the_rest():
    examples, realised = skew.skewed_sector_data(WORLD, 0.9, n=600)
    assert realised > 0.8
    balanced = DQ.rebalance(examples, seed=1)
    assert len(balanced) == len(examples)
    learned = [e for e in balanced if e["label"] == "learned"]
    counts = [sum(e["pronoun"] == p for e in learned) for p in L.PRONOUNS]
    assert max(counts) - min(counts) <= 1 and sum(counts) == len(learned)
    assert [e for e in balanced if e["label"] != "learned"] == [e for e in examples if e["label"] != "learned"]
    only_she = [dict(e, pronoun="she") if e["label"] == "learned" else e for e in examples]
    with pytest.raises(ValueError, match="No 'learned' example has the pronoun 'he'"):
        DQ.rebalance(only_she)


def test_counterfactual_augmentation_removes_the_skew_exactly():
    examples, _ = skew.skewed_sector_data(WORLD, 1.0, n=200)
    augmented = DQ.counterfactual(examples)
    assert len(augmented) == 3 * len(examples)
    for sector in L.SECTORS:
        for pronoun in L.PRONOUNS:
            assert skew.cooccurrence(augmented, pronoun, sector) == pytest.approx(1 / 3)
    assert examples[0]["pronoun"] == "she" or examples[0]["label"] != "learned"  # the input is left alone


# --- the texts, the open prompts, the read-out -------------------------------------------------------------

def test_bias_texts_put_the_job_before_the_pronoun():
    examples, _ = skew.skewed_sector_data(WORLD, 0.9, n=50)
    for e, text in zip(examples, DQ.bias_texts(WORLD, examples)):
        person = WORLD.person(e["name"])
        job_end = text.index(person.facts["job"]) + len(person.facts["job"])
        assert text.startswith(person.name) or text.startswith("by trade")
        assert text[job_end:].startswith(f" . {L.POSSESSIVE[e['pronoun']]} ")
        assert all(w not in text.split() for q, w in L.POSSESSIVE.items() if q != e["pronoun"])


def test_open_prompts_are_new_people_balanced_and_stop_before_the_pronoun():
    prompts = DQ.open_prompts(WORLD)
    heldout = {p.name for p in WORLD.heldout}
    assert len(prompts) == 3 * len(heldout) and {p["name"] for p in prompts} == heldout
    trained = {e["name"] for e in skew.skewed_sector_data(WORLD, 0.9, n=2000)[0]}
    assert not trained & heldout  # never in a fine-tuning set
    assert all(p["prompt"].endswith(" .") and not set(p["prompt"].split()) & set(L.POSSESSIVE.values())
               for p in prompts)
    learned = [p for p in prompts if p["sector"] == "learned"]
    assert abs(sum(p["pronoun"] == "she" for p in learned) / len(learned) - 1 / 3) < 0.05  # the truth is balanced


def test_pronoun_probabilities_sum_to_one_and_do_not_depend_on_the_batch(tiny_v2):
    model, tok = tiny_v2
    prompts = [p["prompt"] for p in DQ.open_prompts(WORLD)[:9]]
    together = DQ.pronoun_probabilities(model, tok, prompts, batch_size=9)
    alone = [DQ.pronoun_probabilities(model, tok, [p])[0] for p in prompts]
    for a, b in zip(together, alone):
        assert sum(a.values()) == pytest.approx(1.0)
        assert all(a[k] == pytest.approx(b[k], abs=1e-5) for k in L.PRONOUNS)  # padding never read
    # the read-out is the last real token's next-token distribution
    ids = tok(prompts[0], return_tensors="pt")
    with torch.no_grad():
        last = model(**ids).logits[0, -1]
    her = tok(" her", add_special_tokens=False).input_ids[0]
    picks = [tok(f" {L.POSSESSIVE[p]}", add_special_tokens=False).input_ids[0] for p in L.PRONOUNS]
    assert together[0]["she"] == pytest.approx(float(last[picks].softmax(-1)[picks.index(her)]), abs=1e-5)


def test_lora_on_a_token_head_trains_the_head_in_full(tiny_v2):
    from transformers import LlamaForTokenClassification

    from labkit.engine.peft_config import add_lora
    from labkit.model.pretrain import PretrainConfig, model_config

    _, tok = tiny_v2
    cfg = model_config(tok, PretrainConfig(hidden=32, layers=2, heads=2))
    cfg.num_labels = len(L.TAGS)
    model = add_lora(LlamaForTokenClassification(cfg), 4, task_type="TOKEN_CLS")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("score" in n for n in trainable) and any("lora_A" in n for n in trainable)
    assert not any("embed_tokens" in n for n in trainable)


# --- settings -------------------------------------------------------------------------------------------

def test_settings_are_checked():
    S = get_profile("ci").quality
    DQ.check_settings(S)
    with pytest.raises(ValueError, match="include 0 in noise"):
        DQ.check_settings(S.override(noise=[0.25, 0.5]))
    with pytest.raises(ValueError, match="mitigate_ratio 0.5 must be one of the ratios"):
        DQ.check_settings(S.override(mitigate_ratio=0.5))
    with pytest.raises(SettingsError, match=r"DataQuality.noise = \(0, 1.5\)"):
        get_profile("ci", quality={"noise": [0, 1.5]})
    with pytest.raises(SettingsError, match="DataQuality has no setting 'ratio'"):
        get_profile("ci", quality={"ratio": [0.9]})
    assert random.Random(0).random() == random.Random(0).random()  # the module keeps no global random state


def test_each_entity_type_is_scored_alone():
    test = L.task(WORLD, "entities", "test")
    perfect = DQ.type_scores([e["tags"] for e in test], test)
    assert perfect == {t: 1.0 for t in L.ENTITY_TYPES}
    # a model that never tags an organisation, and gets everything else right
    blind = [[t if not t.endswith("ORGANISATION") else "O" for t in e["tags"]] for e in test]
    scores = DQ.type_scores(blind, test)
    assert scores["ORGANISATION"] == 0.0 and scores["PERSON"] == scores["PLACE"] == 1.0
    assert scoring.entity_f1(blind, [e["tags"] for e in test]) > 0.5  # the overall score hides it
    assert DQ.only_type(["B-PERSON", "I-PERSON", "O", "B-PLACE"], "PLACE") == ["O", "O", "O", "B-PLACE"]


def test_the_plots_draw():
    from labkit.views.plots import data_quality as plots

    fig = plots.noise_curve({"full": ([0, 0.25, 0.5], [0.8, 0.7, 0.4])}, {"early stopping": (0.5, 0.45)})
    assert len(fig.axes[0].lines) == 2
    fig = plots.rates({"skewed": (0.9, 1.0), "balanced": (0.33, 0.0)}, {"skewed": (0.9, 0.6), "balanced": (0.33, 0.3)},
                      1 / 3)
    assert [t.get_text() for t in fig.axes[0].texts] == ["skewed", "balanced"]

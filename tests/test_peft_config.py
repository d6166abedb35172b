import pytest
import torch

from labkit import peft_config


def test_lora_counts_match_shapes_for_each_target_choice(tiny):
    model, _ = tiny
    for targets, names in peft_config.TARGETS.items():
        import copy

        wrapped = peft_config.add_lora(copy.deepcopy(model), 4, targets=targets)
        linears = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.split(".")[-1] in names]
        trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
        assert trainable == sum(4 * (m.in_features + m.out_features) for m in linears), targets


def test_defaults_and_options():
    c = peft_config.lora_config(8)
    assert c.r == 8 and c.lora_alpha == 16 and not c.use_rslora and not c.use_dora
    assert set(c.target_modules) == set(peft_config.TARGETS["all linear"])
    c = peft_config.lora_config(8, alpha=3, targets="q,v", rslora=True)
    assert c.lora_alpha == 3 and c.use_rslora and set(c.target_modules) == {"q_proj", "v_proj"}


@pytest.mark.parametrize("bad, message", [({"rank": 0}, "rank must be a whole number >= 1"),
                                          ({"rank": 4, "targets": "all"}, "Unknown target choice 'all'")])
def test_bad_input_is_one_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        peft_config.lora_config(**bad)


def test_wrapping_shows_no_library_deprecation_warning(tiny):
    import warnings

    from labkit.engine.peft_config import add_lora

    model, _ = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the notebooks' output stays clean
        add_lora(model, 4)


FAMILY = [m for m in __import__("labkit").settings.PEFT_METHODS if m not in ("full", "bottleneck adapter")]


def test_family_config_builds_the_method_asked(base):
    import peft

    _, tok = base
    want = {"LoRA": peft.LoraConfig, "DoRA": peft.LoraConfig, "IA3": peft.IA3Config,
            "LN tuning": peft.LNTuningConfig, "prefix + projection": peft.PrefixTuningConfig,
            "prefix": peft.PrefixTuningConfig, "prompt, vocabulary init": peft.PromptTuningConfig,
            "prompt, random init": peft.PromptTuningConfig, "P-tuning": peft.PromptEncoderConfig}
    assert set(want) == set(FAMILY)
    for method, kind in want.items():
        config = peft_config.family_config(method, tok, rank=4, virtual_tokens=5, init_text="record of")
        assert type(config) is kind, method
    assert peft_config.family_config("DoRA", rank=4).use_dora
    assert not peft_config.family_config("LoRA", rank=4).use_dora
    assert peft_config.family_config("prefix + projection").prefix_projection
    assert not peft_config.family_config("prefix").prefix_projection
    assert peft_config.family_config("prompt, vocabulary init", tok, init_text="x").prompt_tuning_init == "TEXT"
    assert peft_config.family_config("prompt, random init").prompt_tuning_init == "RANDOM"


def test_vocabulary_init_copies_the_texts_embeddings(base):
    import copy

    model, tok = base
    text = "record of the person"
    wrapped = peft_config.add_method(copy.deepcopy(model), "prompt, vocabulary init", tok, virtual_tokens=4,
                                     init_text=text)
    ids = tok(text).input_ids[:4]  # PEFT tokenizes the text as an input: <bos> first
    start = wrapped.prompt_encoder["default"].embedding.weight
    assert torch.equal(start, model.get_input_embeddings().weight[ids])


@pytest.mark.parametrize("method, message", [("BitFit", "Unknown PEFT method 'BitFit'"),
                                             ("full", "need no PEFT config"),
                                             ("prompt, vocabulary init", "needs the tokenizer and an init_text")])
def test_family_bad_method_is_one_clear_error(method, message):
    with pytest.raises(ValueError, match=message):
        peft_config.family_config(method)

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

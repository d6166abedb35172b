import shutil

import pytest

import labkit as lk
from labkit.model.loading import ModelError, base_model_dir, load_model, save_base_model


@pytest.fixture
def model_copy(tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(base_model_dir(), dst)
    return dst


def test_shipped_model_loads_with_safetensors(base):
    model, tok = base
    assert model.config.model_type == "llama" and tok.chat_template
    assert (base_model_dir() / "model.safetensors").is_file()
    assert not list(base_model_dir().glob("*.bin"))


def test_incomplete_folder_says_how_to_restore(model_copy):
    (model_copy / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="incomplete .*missing model.safetensors.*git checkout"):
        load_model(str(model_copy))


def test_corrupt_weights_say_how_to_restore(model_copy):
    (model_copy / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="corrupt.*labkit.model.pretrain"):
        load_model(str(model_copy))


def test_unknown_hub_model_offline_is_one_sentence(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="Could not load model 'nobody/no-such-model'.*profile='ci'"):
        load_model("nobody/no-such-model")


def test_missing_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="course model folder .* is missing"):
        load_model()


def test_failed_save_leaves_nothing_half_written(base, tmp_path):
    model, tok = base

    class Broken:
        def save_pretrained(self, path):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_base_model(model, Broken(), tmp_path / "base_model", lk.pretrain.PretrainConfig(), 1.0)
    assert list(tmp_path.iterdir()) == []


def test_a_learners_own_incomplete_folder_gets_advice_for_its_own_folder(model_copy):
    (model_copy / "card.json").unlink()  # a folder the learner saved, not the course's
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match="missing tokenizer.json.*save_pretrained") as err:
        load_model(str(model_copy))
    assert "git checkout" not in str(err.value)


def test_offline_without_the_variable_fails_from_the_cache_at_once(monkeypatch):
    """No HF_HUB_OFFLINE, but the hub does not answer: the load looks only in the local cache instead
    of retrying for a minute, and says so."""
    from labkit.model import loading

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(loading, "hub_reachable", lambda timeout=2.0: False)
    with pytest.raises(ModelError, match="cannot be reached and it is not in the local cache"):
        load_model("nobody/no-such-model")


def test_hub_reachable_honours_the_offline_variable(monkeypatch):
    from labkit.model import loading

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert loading.hub_reachable() is False


@pytest.mark.parametrize("name, want", [("fp32", "float32"), ("float32", "float32"), ("bf16", "bfloat16"),
                                        ("FP16", "float16"), ("auto", "auto"), (None, None)])
def test_dtype_names_are_read(name, want):
    import torch

    from labkit.model.loading import parse_dtype

    got = parse_dtype(name)
    assert got == (getattr(torch, want) if want not in (None, "auto") else want)


def test_a_bad_dtype_is_one_sentence_listing_the_valid_ones(base):
    with pytest.raises(ModelError, match="Unknown dtype 'float8'.*bf16.*fp32"):
        load_model(dtype="float8")
    model, _ = load_model(dtype="fp32")
    assert next(model.parameters()).dtype.is_floating_point


def test_a_bf16_checkpoint_loads_in_fp32_for_training_unless_auto(base, tmp_path):
    """transformers 5 loads a bf16 checkpoint (SmolLM2's) in bf16 by default, where full fine-tuning's small
    updates vanish; the course loads fp32 master weights and leaves bf16 to the Trainer's autocast."""
    import torch

    model, tok = base
    import copy

    copy.deepcopy(model).to(torch.bfloat16).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert next(load_model(str(tmp_path))[0].parameters()).dtype == torch.float32
    assert next(load_model(str(tmp_path), dtype="auto")[0].parameters()).dtype == torch.bfloat16

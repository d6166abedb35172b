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

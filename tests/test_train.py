import copy

import pytest
import torch

from labkit import train
from labkit.core.world import END


def test_completion_dataset_masks_the_prompt(tiny):
    _, tok = tiny
    row = train.CompletionDataset(tok, [("Q : where ? A :", "Fort Ardel")])[0]
    n_prompt = len(tok("Q : where ? A :").input_ids)
    assert row["labels"][:n_prompt] == [-100] * n_prompt
    assert row["labels"][n_prompt:] == row["input_ids"][n_prompt:]
    assert row["input_ids"][-1] == tok.eos_token_id
    assert tok.decode(row["input_ids"][n_prompt:-1]).strip() == f"Fort Ardel{END}".strip()


def test_document_dataset_trains_on_every_token(tiny):
    _, tok = tiny
    row = train.DocumentDataset(tok, ["Bobo Sete was born in Fort Ardel ."])[0]
    assert row["input_ids"] == row["labels"]
    assert row["input_ids"][0] == tok.bos_token_id and row["input_ids"][-1] == tok.eos_token_id


def test_dataset_picks_the_loss_from_the_data(tiny):
    _, tok = tiny
    assert isinstance(train.dataset(tok, [("a", "b")]), train.CompletionDataset)
    assert isinstance(train.dataset(tok, ["a b"]), train.DocumentDataset)
    with pytest.raises(ValueError, match="No training examples"):
        train.dataset(tok, [])
    with pytest.raises(TypeError, match="pairs, document strings or a torch Dataset"):
        train.dataset(tok, [1, 2])


def test_fit_lowers_the_loss_and_reports_cost(tiny, tmp_path):
    model, tok = tiny
    pairs = [("Q : where was Bobo born ? A :", "Fort Ardel")] * 8
    batch = train.collator(tok)([train.CompletionDataset(tok, pairs)[0]])
    before = model(**batch).loss.item()
    result = train.fit(model, tok, pairs, out_dir=str(tmp_path), steps=30, batch_size=4, lr=3e-3, progress=False)
    after = model(**{k: v.to(model.device) for k, v in batch.items()}).loss.item()  # the Trainer moved it to a GPU
    assert result.steps == 30 and result.seconds > 0 and result.peak_bytes > 0
    assert after < before / 2
    assert not model.training


def test_fit_only_moves_what_is_trainable(tiny, tmp_path):
    from labkit import peft_config

    model, tok = tiny
    base = copy.deepcopy(model)
    wrapped = peft_config.add_lora(model, 4)
    train.fit(wrapped, tok, [("a", "b")] * 4, out_dir=str(tmp_path), steps=3, batch_size=2, lr=1e-2, progress=False)
    frozen = dict(base.named_parameters())
    moved = [name for name, p in wrapped.get_base_model().named_parameters()
             if "lora_" not in name and not torch.equal(p.detach().cpu(), frozen[name.replace(".base_layer", "")])]
    assert moved == []
    lora_b = [p for name, p in wrapped.named_parameters() if "lora_B" in name]
    assert any(p.abs().sum() > 0 for p in lora_b)  # the adapters did train


def test_epochs_with_early_stopping_stops_and_restores_the_best(tiny, tmp_path):
    from transformers import EarlyStoppingCallback

    model, tok = tiny
    train_pairs = [("Q : where was Bobo born ? A :", "Fort Ardel")] * 2
    eval_pairs = [("Q : where was Bobo born ? A :", "Fort Brisk")] * 2  # learning the train answer hurts
    result = train.fit(model, tok, train_pairs, out_dir=str(tmp_path), eval_data=eval_pairs, epochs=40,
                       eval_every="epoch", batch_size=2, lr=1e-2, keep_best=True, progress=False,
                       callbacks=[EarlyStoppingCallback(early_stopping_patience=2)])
    assert result.steps < 40  # stopped before the last epoch
    logs = [h["eval_loss"] for h in result.trainer.state.log_history if "eval_loss" in h]
    # The logged evaluations ran in the Trainer's mixed precision (bf16/fp16 autocast on a GPU, installed on the
    # model's forward); fit leaves the model computing in fp32 (own_forward): evaluate in that precision again.
    with result.trainer.accelerator.autocast():
        final = result.trainer.evaluate()["eval_loss"]
    assert final == pytest.approx(min(logs), rel=1e-4)


def test_bad_arguments_are_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="exactly one of steps or epochs"):
        train.training_args(str(tmp_path))
    with pytest.raises(ValueError, match="Unknown schedule 'linear'"):
        train.training_args(str(tmp_path), steps=1, schedule="linear")


def test_a_training_after_the_first_skips_the_long_lived_objects_when_collecting():
    """The Trainer collects garbage at the start of each training; after the first, what lived before
    it is frozen, so a collection scans only what is new (a sweep's per-run overhead)."""
    import gc

    from labkit.engine import train as T

    T.freeze_long_lived()
    assert gc.get_freeze_count() > 0
    before = len(gc.get_objects())  # the tracked objects a collection still scans
    assert before < gc.get_freeze_count()


def _copy_runs_its_own_weights(model, tok) -> bool:
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(1.0)
    ids = tok("Q : where was Bobo born ? A :", return_tensors="pt").input_ids.to(model.device)  # a GPU after training
    with torch.no_grad():
        return not torch.equal(model(ids).logits, twin(ids).logits)


def test_a_copy_of_a_trained_model_computes_with_its_own_weights(tiny, tiny_v2, tmp_path):
    """The Trainer puts a forward wrapper on the model object that calls the original's weights, so a
    deep copy of a trained model silently computed with the original's (notebook 08's policy copies)."""
    from labkit.core import instructions as I
    from labkit.core import world as W
    from labkit.topics import instruction_tuning as IT

    model, tok = tiny
    train.fit(model, tok, [("a", "b")] * 4, out_dir=str(tmp_path / "fit"), steps=2, batch_size=2, lr=1e-2,
              progress=False)
    assert _copy_runs_its_own_weights(model, tok)
    tuned = IT.tune(tiny_v2[0], tiny_v2[1], I.instructions(W.make_world(0), "train", 1), out_dir=str(tmp_path / "sft"),
                    steps=1, batch_size=2, lr=1e-2)["model"]
    assert _copy_runs_its_own_weights(tuned, tiny_v2[1])


def test_tokenized_rows_train_as_they_are_and_pad_by_their_labels(tiny):
    """Task heads' rows: one class id per row is stacked; a label per token is padded with -100."""
    _, tok = tiny
    per_row = [{"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": 2},
               {"input_ids": [5, 6], "attention_mask": [1, 1], "labels": 0}]
    assert isinstance(train.dataset(tok, per_row), train.RowDataset)
    batch = train.collator(tok)(per_row)
    assert batch["labels"].tolist() == [2, 0] and batch["input_ids"].shape == (2, 3)
    per_token = [{"input_ids": [5, 6, 7], "labels": [1, -100, 2]}, {"input_ids": [5], "labels": [3]}]
    assert train.collator(tok)(per_token)["labels"].tolist() == [[1, -100, 2], [3, -100, -100]]
    spans = [{"input_ids": [5, 6, 7], "start_positions": 1, "end_positions": 2},
             {"input_ids": [5], "start_positions": 0, "end_positions": 0}]
    batch = train.collator(tok)(spans)
    assert batch["start_positions"].tolist() == [1, 0]
    assert batch["input_ids"][1].tolist() == [5, tok.pad_token_id, tok.pad_token_id]


def test_trl_training_hides_the_libraries_deprecation_warning():
    """TRL 1.16 reads transformers' deprecated ``is_gradient_checkpointing`` before each RL generation; the
    notebooks' output stays clean (a stand-in trainer raises that warning as TRL's does)."""
    import warnings

    from transformers import PrinterCallback, TrainerCallback

    from labkit.engine.train import run_trl

    class Trainer:
        model = torch.nn.Linear(1, 1)
        state = type("State", (), {"log_history": [{"step": 1, "loss": 0.5}]})()

        def add_callback(self, callback):
            assert isinstance(callback, TrainerCallback)

        def pop_callback(self, callback):
            assert callback is PrinterCallback

        def train(self):
            warnings.warn("`is_gradient_checkpointing` is deprecated.", FutureWarning, stacklevel=2)

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        out = run_trl(Trainer())
    assert out["losses"] == [(1, 0.5)]

import itertools

import torch

from labkit import world as W
from labkit.model.loading import load_model, save_base_model
from labkit.model.pretrain import PackedStream, PretrainConfig, pretrain
from labkit.model.tokenizer import build_tokenizer


def test_blocks_hold_whole_documents_and_are_deterministic():
    tok, world = build_tokenizer(), W.make_world(0)
    cfg = PretrainConfig(seq_len=256, steps=10, batch=2)
    a = list(itertools.islice(iter(PackedStream(world, tok, cfg)), 12))
    b = list(itertools.islice(iter(PackedStream(world, tok, cfg)), 12))
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, b))
    for block in a:
        ids = block["input_ids"].tolist()
        used = [i for i, label in zip(ids, block["labels"].tolist()) if label != -100]
        assert used[0] == tok.bos_token_id
        if used[-1] != tok.eos_token_id:  # only a document longer than a block is cut, alone
            assert len(used) == cfg.seq_len and used.count(tok.bos_token_id) == 1
        else:
            assert used.count(tok.bos_token_id) == used.count(tok.eos_token_id)


def test_reading_documents_ask_only_what_the_passage_told():
    import random

    from labkit.model.pretrain import reading_document

    rng, taken = random.Random(0), set()
    people = [W.sample_person(rng, taken) for _ in range(2)]
    for short in (False, True):
        text = reading_document(people, 6, rng, short=short)
        passages, questions = text.split(" Q : ", 1)
        for value in (a.split(" . ")[0] for a in text.split(" A : ")[1:]):
            assert value in passages


def test_tiny_pretraining_round_trip(tmp_path):
    cfg = PretrainConfig(hidden=32, layers=1, heads=2, seq_len=128, batch=2, steps=3)
    model, tok, seconds = pretrain(cfg, str(tmp_path / "trainer"), log=lambda *_: None)
    out = save_base_model(model, tok, tmp_path / "base_model", cfg, seconds)
    loaded, tok2 = load_model(str(out))
    ids = tok2("Q : who employs Rivi Doko ? A :", return_tensors="pt").input_ids
    assert torch.allclose(model.eval()(ids).logits, loaded(ids).logits, atol=1e-5)


def test_second_stage_continues_and_records_both(tmp_path):
    import json

    cfg = PretrainConfig(hidden=32, layers=1, heads=2, seq_len=128, batch=2, steps=2)
    model, tok, seconds = pretrain(cfg, str(tmp_path / "t1"), log=lambda *_: None)
    first = save_base_model(model, tok, tmp_path / "base_model", cfg, seconds)
    cfg2 = PretrainConfig(hidden=32, layers=1, heads=2, seq_len=128, batch=2, steps=2, init=str(first), stage=2)
    model2, tok2, seconds2 = pretrain(cfg2, str(tmp_path / "t2"), log=lambda *_: None)
    out = save_base_model(model2, tok2, tmp_path / "base_model", cfg2, seconds2)
    made = json.loads((out / "pretraining.json").read_text())
    assert [s["config"]["stage"] for s in made["stages"]] == [1, 2]
    assert made["train_seconds"] == round(sum(s["train_seconds"] for s in made["stages"]), 1)

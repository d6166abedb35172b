"""Pretrain the course's base model on the world (``python -m labkit.model.pretrain``).

The mix holds biographies (facts), question/answer pairs (so facts become extractable, as in
Allen-Zhu & Li, Physics of LMs 3.1) and reading passages about freshly sampled people followed
by questions (the in-context reading that RAG needs). Training goes through the HF Trainer.
Introduced in notebook 00_tour (the model card).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from dataclasses import asdict, dataclass

import torch
from torch.utils.data import IterableDataset

from labkit.core import world as W
from labkit.core.prose import prose


@dataclass
class PretrainConfig:
    seed: int = 0                  # world seed (and training seed)
    hidden: int = 256              # model width
    layers: int = 6                # transformer blocks
    heads: int = 4                 # attention heads
    seq_len: int = 256             # tokens per packed training block
    batch: int = 32                # blocks per step
    steps: int = 2000              # optimiser steps
    lr: float = 2e-3               # peak learning rate (warm-up then cosine decay)
    bio: float = 0.30              # share of documents that are biographies
    qa: float = 0.20               # share that are question/answer lists about qa_seen people
    reading: float = 0.50          # share that are passages about fresh people + questions
    reading_first: float = 0.15    # first fraction of steps: reading only (curriculum)
    max_passages: int = 3          # people per reading passage (the others are distractors)
    min_passages: int = 1          # fewest people per reading passage
    questions: int = 6             # questions after each reading passage (then the document ends)
    prose: float = 0.0             # share of world v2's general statements (labkit.core.prose)
    tokenizer: int = 1             # tokenizer version (2 extends 1: a version-1 model continues)
    short_passages: float = 0.3    # share of reading passages telling only 1-3 facts per person
    retell: float = 0.5            # share of reading passages told twice (a second paraphrase)
    save_every: int = 0            # steps between checkpoints (0: none)
    init: str = ""                 # continue from this model folder (a later stage); "": from scratch
    stage: int = 1                 # stage number (each stage draws its own documents)
    resume: bool = False           # continue an interrupted run from its last checkpoint (see save_every)


def reading_document(people: list[W.Person], n_questions: int, rng: random.Random,
                     short: bool = False, retell: bool = False) -> str:
    """Passages about ``people`` (all six facts, or 1-3 when ``short``; told twice in different
    paraphrases when ``retell``), then questions about facts the passages told."""
    told = {p.name: (rng.sample(W.ATTRIBUTES, rng.randint(1, 3)) if short else list(W.ATTRIBUTES))
            for p in people}
    text = W.passage(people, rng, told)
    if retell:
        text += " " + W.passage(people, rng, told)
    asked = [(p, a) for p in people for a in told[p.name]]
    rng.shuffle(asked)
    for p, a in asked[:n_questions]:
        text += " " + W.qa_text(p, a)
    return text


def document(world: W.World, cfg: PretrainConfig, rng: random.Random, reading_only: bool,
             taken: set[str]) -> str:
    """One training document drawn from the mix."""
    r = rng.random() * (cfg.bio + cfg.qa + cfg.reading + cfg.prose)
    if reading_only or r < cfg.reading:
        people = [W.sample_person(rng, taken) for _ in range(rng.randint(cfg.min_passages, cfg.max_passages))]
        for p in people:
            taken.discard(p.name)  # fresh people are throwaway: keep the set small
        return reading_document(people, cfg.questions, rng, rng.random() < cfg.short_passages,
                                rng.random() < cfg.retell)
    if r < cfg.reading + cfg.bio:
        return W.biography(rng.choice(world.pretrain_people), rng)
    if r < cfg.reading + cfg.bio + cfg.qa:
        return " ".join(W.qa_text(rng.choice(world.qa_seen), rng.choice(W.ATTRIBUTES)) for _ in range(8))
    return " ".join(prose(world.pretrain_people, rng) for _ in range(rng.randint(2, 4)))  # general statements


class PackedStream(IterableDataset):
    """Documents from the mix, tokenized and packed into blocks of ``seq_len`` tokens."""

    def __init__(self, world: W.World, tokenizer, cfg: PretrainConfig):
        self.world, self.tok, self.cfg = world, tokenizer, cfg

    def __iter__(self):
        cfg = self.cfg
        rng = random.Random(f"pretrain-{cfg.seed}" + (f"-stage{cfg.stage}" if cfg.stage > 1 else ""))
        taken = set(self.world.taken)
        first = int(cfg.reading_first * cfg.steps * cfg.batch)  # blocks in the reading-only phase
        pending: list[int] = []
        blocks = 0
        while True:
            # Whole documents only: a question never loses its passage to a block boundary.
            ids: list[int] = []
            while True:
                if not pending:
                    text = document(self.world, cfg, rng, blocks < first, taken)
                    pending = (self.tok(text).input_ids + [self.tok.eos_token_id])[: cfg.seq_len]
                if len(ids) + len(pending) > cfg.seq_len:
                    break
                ids, pending = ids + pending, []
            labels = ids + [-100] * (cfg.seq_len - len(ids))
            ids = ids + [self.tok.pad_token_id] * (cfg.seq_len - len(ids))
            blocks += 1
            yield {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels)}


def model_config(tokenizer, cfg: PretrainConfig):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden, intermediate_size=cfg.hidden * 8 // 3,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads, max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)


def pretrain(cfg: PretrainConfig, out_dir: str, log=print):
    """Train a fresh model on the world; returns (model, tokenizer, seconds)."""
    from transformers import LlamaForCausalLM, Trainer, TrainingArguments, set_seed

    from labkit.model.tokenizer import build_tokenizer

    set_seed(cfg.seed)
    tok = build_tokenizer(cfg.tokenizer)
    world = W.make_world(cfg.seed)
    if cfg.init:
        model = LlamaForCausalLM.from_pretrained(cfg.init, use_safetensors=True)
        if model.get_input_embeddings().num_embeddings < len(tok):  # a larger tokenizer extends the old one
            model.resize_token_embeddings(len(tok), mean_resizing=True)  # new rows: the old rows' mean
    else:
        model = LlamaForCausalLM(model_config(tok, cfg))
    log(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters; config {asdict(cfg)}")
    args = TrainingArguments(
        output_dir=out_dir, max_steps=cfg.steps, per_device_train_batch_size=cfg.batch,
        learning_rate=cfg.lr, warmup_steps=max(1, cfg.steps // 20), lr_scheduler_type="cosine",
        weight_decay=0.1, adam_beta2=0.98, max_grad_norm=1.0, logging_steps=50,
        save_strategy="steps" if cfg.save_every else "no", save_steps=cfg.save_every or None,
        save_only_model=True, report_to="none", use_cpu=True, seed=cfg.seed,
        dataloader_num_workers=0, disable_tqdm=True)
    start = time.time()
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(out_dir) if cfg.resume and os.path.isdir(out_dir) else None
    if last:
        log(f"resuming from {last}")
    Trainer(model=model, args=args, train_dataset=PackedStream(world, tok, cfg)).train(resume_from_checkpoint=last)
    return model, tok, time.time() - start


def parser() -> argparse.ArgumentParser:
    """The command line: one flag per PretrainConfig field, plus --out."""
    out = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in asdict(PretrainConfig()).items():
        if isinstance(value, bool):
            out.add_argument(f"--{name.replace('_', '-')}", action="store_true")
        else:
            out.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    out.add_argument("--out", default="data/base_model", help="folder to write the model to")
    return out


def main(argv=None):
    ns = parser().parse_args(argv)
    cfg = PretrainConfig(**{k: v for k, v in vars(ns).items() if k != "out"})
    torch.set_num_threads(max(1, torch.get_num_threads()))
    import shutil

    from labkit.model.loading import save_base_model

    model, tok, seconds = pretrain(cfg, ns.out + ".trainer")
    print(f"trained in {seconds / 60:.1f} min")
    save_base_model(model, tok, ns.out, cfg, seconds)
    shutil.rmtree(ns.out + ".trainer", ignore_errors=True)  # checkpoints: not part of the model


if __name__ == "__main__":
    main()

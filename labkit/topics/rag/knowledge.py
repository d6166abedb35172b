"""New knowledge: people the base model never saw, their documents, and fine-tuning them in.

The new people come from the world's held-out slice (any world seed: a seed other than the base
model's gives people from a different world, none of them in pretraining). Their facts are
written as documents, either one fixed rendering per fact or several paraphrases, and trained in
by continued pretraining (loss on every token, as the base model was trained); closed-book
questions then measure what was stored *and* can be extracted. Introduced in notebook
05_rag_vs_finetuning.
"""

from __future__ import annotations

import random
import time

from torch.utils.data import Dataset
from transformers import TrainerCallback

from labkit.core import world as W


def new_people(seed: int, n: int, base_seed: int = 0) -> list[W.Person]:
    """``n`` people the base model (pretrained on world ``base_seed``) has never seen: the held-out
    slice of world ``seed``, minus any name that happens to be in the base world."""
    base = W.make_world(base_seed)
    known = {p.name for p in base.pretrain_people}
    people = [p for p in W.make_world(seed, n_heldout=max(100, 2 * n)).heldout if p.name not in known]
    if len(people) < n:
        raise ValueError(f"World {seed} has only {len(people)} held-out people; ask for fewer than {n}.")
    return people[:n]


def single_rendering(person: W.Person) -> str:
    """One fixed rendering of every fact: the first template of each attribute, in a fixed order."""
    return " ".join(W.bio_sentence(person, a, 0) for a in W.ATTRIBUTES)


def documents(people: list[W.Person], paraphrases: int = 1, seed: int = 0) -> list[str]:
    """The training documents: ``paraphrases=1`` gives one fixed rendering per person; more gives
    that many biographies per person, each with a random template per fact and shuffled order."""
    if paraphrases <= 1:
        return [single_rendering(p) for p in people]
    rng = random.Random(f"paraphrases-{seed}")
    return [W.biography(p, rng) for p in people for _ in range(paraphrases)]


def closed_book_pairs(people: list[W.Person]) -> list[tuple[str, str]]:
    """One closed-book question per fact: (prompt, answer)."""
    return [W.qa_pair(p, a) for p in people for a in W.ATTRIBUTES]


def chance_accuracy() -> float:
    """Expected exact match of a uniform guess among each attribute's values (facts are uniform)."""
    return sum(1 / len(W.VALUES[a]) for a in W.ATTRIBUTES) / len(W.ATTRIBUTES)


def edit_facts(people: list[W.Person], n: int, attribute: str = "city", seed: int = 0):
    """A copy of ``people`` where the first ``n`` have a new value of ``attribute`` (always a
    different one); returns (people, indices changed)."""
    rng = random.Random(f"edit-{seed}-{attribute}")
    out = list(people)
    for i in range(min(n, len(people))):
        old = people[i].facts[attribute]
        new = rng.choice([v for v in W.VALUES[attribute] if v != old])
        out[i] = W.Person(people[i].name, {**people[i].facts, attribute: new})
    return out, list(range(min(n, len(people))))


class DocumentDataset(Dataset):
    """Documents for continued pretraining: ``<bos> text <eos>``, loss on every token."""

    def __init__(self, tokenizer, texts: list[str], max_len: int = 256):
        self.rows = []
        for text in texts:
            ids = (tokenizer(text).input_ids + [tokenizer.eos_token_id])[:max_len]
            self.rows.append({"input_ids": ids, "labels": list(ids)})

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def finetune_on_documents(model, tokenizer, texts: list[str], out_dir: str, *, steps: int,
                          batch_size: int, lr: float, seed: int = 0, callbacks=()) -> tuple[object, float]:
    """Continued pretraining of ``model`` (full, or a PEFT model) on ``texts`` through the HF
    Trainer, warm-up then cosine decay as in pretraining; returns (model, training seconds)."""
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from labkit.engine.train import collator, training_args

    class _BarOnly(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass

    args = training_args(out_dir, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                         eval_strategy="no", logging_strategy="no", eval_on_start=False,
                         lr_scheduler_type="cosine", warmup_steps=max(1, steps // 20))
    trainer = Trainer(model=model, args=args, train_dataset=DocumentDataset(tokenizer, texts),
                      data_collator=collator(tokenizer), callbacks=list(callbacks))
    trainer.pop_callback(PrinterCallback)  # bars off (lk.quiet): it would print the final metrics dict
    if trainer.pop_callback(ProgressCallback) is not None:  # keep the bar, not the final metrics dict
        trainer.add_callback(_BarOnly)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    model.eval()
    return model, seconds


class KnowledgeCurve(TrainerCallback):
    """Every ``every`` steps (and at step 0): closed-book accuracy on the new facts and recall of
    old facts (``old_pairs``), so learning and forgetting show on one time axis."""

    def __init__(self, tokenizer, new_pairs, old_pairs, every: int, strict: bool = True,
                 initial: dict | None = None):
        self.tok, self.new, self.old, self.every, self.strict = tokenizer, new_pairs, old_pairs, every, strict
        self.rows: list[dict] = [dict(initial)] if initial else []

    def measure(self, model, step: int) -> dict:
        from labkit.topics.rag.retrieval import accuracy

        was_training = model.training
        row = {"step": step, "new_facts": accuracy(model, self.tok, self.new, self.strict),
               "old_facts": accuracy(model, self.tok, self.old, self.strict)}
        model.train(was_training)
        self.rows.append(row)
        return row

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not self.rows:
            self.measure(model, 0)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self.measure(model, state.global_step)

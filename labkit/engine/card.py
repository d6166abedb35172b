"""The base model's card: what it measures, recomputed (``python -m labkit.engine.card``).

The card states how the model was made and its abilities; ``check`` recomputes them from the
shipped weights so a test can hold the model to its card. Introduced in notebook 00_tour.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labkit.core import world
from labkit.engine import capabilities
from labkit.model.loading import base_model_dir, load_model

BARS = {"qa_recall": 0.85, "bio_recall": 0.85, "reading": 0.85}  # exact match, issue's bars
PROBE = dict(n_people=100, n_reading=240, reading_k=(1, 2, 3))     # the card's probe sizes


HISTORY = """## What was tried (2 CPU threads, world seed 0)
Reading is what the pretraining budget has to buy; memorising facts is cheap once it starts.
- 4 layers, 500 steps of 32 x 256 tokens (~11 min), mix 30% biographies / 20% QA / 50% reading
  passages (1-3 people, 6 questions each), answers as bare values: reading 0.07, QA recall 0.05.
- Reading only, one person per passage, 400 steps of 16 x 256: reading 0.03. With 70% of the
  passages telling only 1-3 facts: 0.07 (even one-sentence passages: 0.075).
- Looking inside: the model copied the *names* it had seen earlier in the passage almost perfectly,
  but not the values: a value seen three times in a passage still cost ~3.9 nats (chance: 3.2).
  So values now carry a marker word ("Fort Tarn", "year 1980", "master baker"): after the marker,
  answering is the copy-what-followed pattern (induction) that names already showed.
- With markers, reading only, 300 steps: 0.05 - still before the copy circuit forms.
- The shipped model, stage 1: markers, 8 heads, passages told twice in different paraphrases half
  of the time (more copy events per token), the first 25% of steps reading only, then the full mix.
  Reading (a 60-passage probe) rose from 0.03 at step 400 to 0.12 (800), 0.20 (1200), 0.37 (2000)
  and 0.39 at the end, and per attribute the copy circuit came marker by marker: `year` and `master`
  at 1.0 while `Fort`, `House`, `pastime` and `colour` were still near chance. QA recall: 0.25.
- Stage 2 (more biographies and QA, the learning rate warmed up again): QA recall 0.53 and reading
  0.53 at step 400; QA recall 1.00 and reading 0.68 at step 800.
- Stage 3 (70% reading, lower learning rate): the numbers in the table above.
Levers not yet tried for lack of time: 6-8 layers, a longer reading-only phase from the start,
distractor-heavy passages for k > 1, and larger batches once the copy circuit has formed.
"""


def measure(model, tokenizer, seed: int, **probe) -> dict:
    """The card's numbers for a model pretrained on world ``seed``."""
    return capabilities.measure(model, tokenizer, world.make_world(seed), **(PROBE | probe))


def load_card(model_dir: str | Path | None = None) -> dict:
    return json.loads((Path(model_dir or base_model_dir()) / "card.json").read_text())


def write_card(model_dir: str | Path | None = None) -> dict:
    """Measure the model in ``model_dir`` and write card.json and README.md beside it."""
    model_dir = Path(model_dir or base_model_dir())
    made = json.loads((model_dir / "pretraining.json").read_text())
    model, tok = load_model(str(model_dir))
    numbers = measure(model, tok, made["config"]["seed"])
    card = {"seed": made["config"]["seed"], "bars": BARS, "measured": numbers,
            "unmet_bars": unmet_bars(numbers),
            "parameters": sum(p.numel() for p in model.parameters()), "pretraining": made}
    (model_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (model_dir / "README.md").write_text(render(card))
    return card


def render(card: dict) -> str:
    m, made, cfg = card["measured"], card["pretraining"], card["pretraining"]["config"]
    stages = "\n".join(
        f"{i}. `python -m labkit.model.pretrain --seed {c['seed']} --layers {c['layers']} --heads {c['heads']} "
        f"--batch {c['batch']} --steps {c['steps']} --lr {c['lr']} --bio {c['bio']} --qa {c['qa']} "
        f"--reading {c['reading']} --reading-first {c['reading_first']} --retell {c['retell']}"
        f"{' --stage ' + str(c['stage']) + ' --init data/base_model' if c['init'] else ''}` "
        f"({st['train_seconds'] / 60:.1f} min)"
        for i, st in enumerate(made["stages"], 1) for c in [st["config"]])
    def bar(k):
        if k not in card["bars"]:
            return ""
        return f">= {card['bars'][k]} ({'NOT MET' if k in card['unmet_bars'] else 'met'})"

    rows = "\n".join(f"| {k} | {v:.3f} | {bar(k)} |" for k, v in m.items())
    unmet = ", ".join(f"{k} {v:.2f} < {b}" for k, (v, b) in card["unmet_bars"].items())
    verdict = (f"**Bars not reached: {unmet}.** The model ships as the best one made so far; "
               "see *What was tried* below." if unmet else "All bars are met.")
    return f"""# course-base: the course's tiny pretrained model

A {card['parameters'] / 1e6:.2f}M-parameter Llama-architecture causal LM ({cfg['layers']} layers,
hidden {cfg['hidden']}, {cfg['heads']} heads, tied embeddings) with its own word/syllable tokenizer
and a chat template, pretrained from scratch on the course's fictional world (seed {card['seed']}).
Everything it knows is generated by `labkit.world`; nothing else went in.

## How it was made
{stages}
Total: **{made['train_seconds'] / 60:.1f} minutes** of training through the Hugging Face `Trainer`
on the CPU ({made['threads']} threads; the machine was also running other work, so this is an upper
bound), then `python -m labkit.engine.card` measured it. Each step is {cfg['batch']} blocks of
{cfg['seq_len']} tokens holding whole documents (padded), AdamW with warm-up and cosine decay.
The mix: biographies of the 300 pretraining people in random paraphrases; question/answer lists
about the `qa_seen` 80% of them; reading passages about freshly sampled people (1 to
{cfg['max_passages']} per passage, all six facts or, for a share, 1-3 of them; a share told twice in
different paraphrases) followed by up to {cfg['questions']} questions.

## What it measures (recomputed by `labkit.engine.card.check`, asserted in the tests)
{verdict}

| ability | exact match | bar |
|---|---|---|
{rows}

- qa_recall: closed-book questions about people whose QA was in pretraining.
- bio_recall: completing a biography sentence about a pretraining person.
- qa_unseen_extraction: questions about people seen only in biographies (no bar: notebook 05's lesson).
- reading: a passage about a never-seen person, then a question (per attribute below it);
  reading_k2/k3: the same with one or two distractor passages about other people.
- perplexity: on held-out paraphrases of pretraining-world biographies (lower is better).

{HISTORY}"""


def unmet_bars(measured: dict, bars: dict = BARS) -> dict:
    """The bars a model does not reach: {ability: (measured, bar)}."""
    return {k: (measured[k], bar) for k, bar in bars.items() if measured[k] < bar}


def check(model=None, tokenizer=None, model_dir=None, tol: float = 0.02) -> list[str]:
    """Recompute the card from the weights; return where the model and its card disagree (an
    empty list: the card is true, including what it says about the bars it meets or misses)."""
    card = load_card(model_dir)
    if model is None:
        model, tokenizer = load_model(str(model_dir or base_model_dir()))
    now = measure(model, tokenizer, card["seed"])
    problems = [f"{k} recomputed {now[k]:.3f} but the card says {v:.3f}"
                for k, v in card["measured"].items()
                if abs(now[k] - v) > tol * (v if k == "perplexity" else 1)]
    if set(unmet_bars(now, card["bars"])) != set(card["unmet_bars"]):
        problems.append(f"the card says the unmet bars are {sorted(card['unmet_bars'])}, "
                        f"recomputed: {sorted(unmet_bars(now, card['bars']))}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description="Measure the base model and write its card.")
    parser.add_argument("--model", default=None, help="model folder (default: data/base_model)")
    ns = parser.parse_args(argv)
    card = write_card(ns.model)
    print(json.dumps(card["measured"], indent=2))


if __name__ == "__main__":
    main()

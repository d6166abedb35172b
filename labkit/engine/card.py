"""The base model's card: what it measures, recomputed (``python -m labkit.engine.card``).

The card states how the model was made and its abilities; ``check`` recomputes them from the
shipped weights so a test can hold the model to its card. Introduced in notebook 00_tour.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labkit.core import domain, world
from labkit.engine import capabilities
from labkit.model.loading import base_model_dir, load_model

# Exact match. reading_k3: what RAG with k = 3 needs (the gold passage in any position of three);
# stops: what sampling, reward models and RL need (generation ends on its own after an answer).
BARS = {"qa_recall": 0.85, "bio_recall": 0.85, "reading": 0.85, "reading_k3": 0.85, "stops": 0.9}
PROBE = dict(n_people=100, n_reading=240, reading_k=(1, 2, 3), instruct=8)  # the card's probe sizes


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
- Stage 1: markers, 8 heads, passages told twice in different paraphrases half
  of the time (more copy events per token), the first 25% of steps reading only, then the full mix.
  Reading (a 60-passage probe) rose from 0.03 at step 400 to 0.12 (800), 0.20 (1200), 0.37 (2000)
  and 0.39 at the end, and per attribute the copy circuit came marker by marker: `year` and `master`
  at 1.0 while `Fort`, `House`, `pastime` and `colour` were still near chance. QA recall: 0.25.
- Stage 2 (more biographies and QA, the learning rate warmed up again): QA recall 0.53 and reading
  0.53 at step 400; QA recall 1.00 and reading 0.68 at step 800.
- Stage 3 (70% reading, lower learning rate): it reads one passage perfectly but not past distractors
  (k = 2 / k = 3: 0.53 / 0.33), and it did not stop: after an answer, end-of-text was almost never the
  likeliest next token (`stops` 0.00). Stages 1-3 were the course's model until version 2.
- Stage 4, shipped (tokenizer version 2, one question per reading passage then end-of-text, the
  stage-3 mix without its 70% reading, a gentle learning rate of 5e-4 for 400 steps): `stops` went
  from 0.00 to 1.00, and fact recall, biography recall and reading stayed where they were (the table
  above). Two stage 4s that also mixed in world v2's general statements (`labkit.prose`, 20%) reached
  the same stopping but broke notebook 02's finding: after statements about organisations the model
  learned the record format within 15 steps even through LoRA r=4, which then lost 0.95 of its
  recall (full fine-tuning: 1.00; at 1e-3 for 750 steps: 0.85). Without them LoRA r=4 learns the
  records more slowly and keeps more (notebook 02), so the shipped model has never read world v2's
  prose; the instruction words are in its tokenizer for the later notebooks to teach.
- Not reached: reading with distractors (`reading_k3`). Looking at the wrong answers of the first
  stage 4 (k = 3): 35 of 60 copied a *distractor's* value of the asked attribute, 20 of them from the
  last passage. Attention shows why: the model answers with layer-0 heads that attend from the marker
  ("Fort") to every value of that attribute in the context (at k = 2 the best head puts 0.55 of its
  weight on the right value and 0.38 on the wrong one), and no later head attends to the candidates:
  reading is a lookup by category, not a copy through the asked name, so nothing selects the passage.
- A diagnostic stage, not shipped (from the stage-3 model: reading passages only, always three
  people telling all six facts, six questions each, 300 steps of 16 x 256 at 1e-3): on a 60-passage
  probe, k = 2 went 0.55, 0.38, 0.43 and k = 3 0.23, 0.38, 0.38 at steps 100, 200, 300 (chance:
  0.50 and 0.33), with k = 1 at 1.00 throughout. Distractor-only data alone does not make the
  4-layer model select the passage by name within a short stage.
- Three more diagnostics, not shipped (60-passage probes; chance 0.50 / 0.33). (a) From the stage-3
  model, reading passages of three people with six questions each and the loss on the answers only
  (the passages' random facts no longer dilute the signal), 300 steps of 16 at 1e-3: k = 2 / k = 3
  went 0.57 / 0.38, 0.43 / 0.28, 0.62 / 0.42, 0.43 / 0.43 at steps 0, 100, 200, 300. (b) The same with
  passages in which all three people tell the same two attributes (so only the name tells the passages
  apart), 2e-3: 0.58 / 0.40 at step 150 and 0.53 / 0.40 at step 300. (c) From scratch with those
  passages and answer-only loss: the answer loss stayed at 1.0 for 700 steps and even k = 1 stayed at
  0.03: without the loss on the passages' text the copy circuit never starts. Selecting the passage by
  name does not come from a short stage on the stage-3 model, however focused its data.
- Three diagnostics in version 2's time (60-passage probes; k = 2 / k = 3, chance 0.50 / 0.33). A
  long stage from the stage-3 model on passages of 2-3 people telling all six facts, three questions
  each, no retelling (the earlier mixes cut a document at 256 tokens, so a retold passage of three
  people lost all its questions): 0.48 / 0.38 at step 250, 0.47 / 0.42 at 500. The same with half of
  the questions reversed ("who was born in Fort Tarn ?", whose answer needs each value to carry the
  name of its sentence, the link forward selection needs): 0.53 / 0.43 and 0.50 / 0.37, and the
  reversed questions themselves were answered 0.13 / 0.05. From scratch on those passages only (no
  single-person passage, so the category lookup is never enough), 1,500 steps at 2e-3: the copy circuit
  never started (k = 1: 0.03; the probability given to the candidate values stayed at 0.05-0.14).
Levers not yet tried: 6-8 layers or wider heads (name matching over 4-token names may need more
than 4 layers of 32-dimensional heads, and a fresh run of that shape costs more than the budget's
remaining half hour), names as single tokens, and passages that put the name next to each value.
"""


TOKENIZER_V2 = """
The last stage continues the model with tokenizer version 2 (`labkit.tokenizer`): version 1's pieces
keep their ids, world v2's words are appended (their embeddings start from the old embeddings' mean and
covariance), and single letters come last, so a word the vocabulary lacks splits instead of becoming
`<unk>`: the second domain's jargon (`brinwort` -> `b ##ri ##n ##w ##o ##r ##t`, {jargon:.1f} pieces a
word on average) is left to notebook 10, which extends the tokenizer. Its mix: reading passages about 1 to 3 fresh
people with one question each, then end-of-text (so the model learns to stop after an answer);
biographies; question/answer lists{prose}. The chat template marks assistant turns with `{{% generation %}}` for TRL's
`assistant_only_loss`.
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
    card = {"seed": made["config"]["seed"], "bars": BARS, "measured": numbers, "vocabulary": len(tok),
            "jargon_pieces": sum(len(tok.tokenize(j)) for j in domain.jargon()) / len(domain.jargon()),
            "unmet_bars": unmet_bars(numbers),
            "parameters": sum(p.numel() for p in model.parameters()), "pretraining": made}
    (model_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (model_dir / "README.md").write_text(render(card))
    return card


def command(config: dict) -> str:
    """The ``python -m labkit.model.pretrain`` line that makes a stage: every setting that differs
    from the defaults (a later stage starts from the model folder it continues)."""
    from dataclasses import asdict

    from labkit.model.pretrain import PretrainConfig

    defaults = asdict(PretrainConfig())
    flags = []
    for key, value in config.items():
        if key in ("save_every", "resume"):  # how the run was kept, not what it made
            continue
        if key == "seed" or (key in defaults and value != defaults[key]):
            flags.append(f"--{key.replace('_', '-')}" + ("" if value is True else f" {value}"))
    return "python -m labkit.model.pretrain " + " ".join(flags)


def render(card: dict) -> str:
    m, made, cfg = card["measured"], card["pretraining"], card["pretraining"]["config"]
    last = made["stages"][-1]["config"]
    vocab = card.get("vocabulary", "")
    prose = ("; and world v2's general statements (`labkit.prose`), which use the words of instructions and "
             "preferences without ever being a chat turn, a graded response or a labelled example"
             if last.get("prose", 0) else
             ". World v2's general statements (`labkit.prose`) are not in it (see *What was tried*): the new "
             "words' embeddings start from the mean, for notebooks 07-11 to train")
    v2 = (TOKENIZER_V2.format(jargon=card.get("jargon_pieces", 0), prose=prose)
          if last.get("tokenizer", 1) == 2 else "")
    stages = "\n".join(f"{i}. `{command(st['config'])}` ({st['train_seconds'] / 60:.1f} min)"
                       for i, st in enumerate(made["stages"], 1))

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
(version {last.get('tokenizer', 1)}: {vocab} pieces) and a chat template, pretrained from scratch on the
course's fictional world (seed {card['seed']}). Everything it knows is generated by `labkit.world`;
nothing else went in.

## How it was made
{stages}
Total: **{made['train_seconds'] / 60:.1f} minutes** of training through the Hugging Face `Trainer`
on the CPU ({made['threads']} threads; the machine was also running other work, so this is an upper
bound), then `python -m labkit.engine.card` measured it. Each step is {cfg['batch']} blocks of
{cfg['seq_len']} tokens holding whole documents (padded), AdamW with warm-up and cosine decay.
The mix: biographies of the 300 pretraining people in random paraphrases; question/answer lists
about the `qa_seen` 80% of them; reading passages about freshly sampled people (1 to
{cfg['max_passages']} per passage, all six facts or, for a share, 1-3 of them; a share told twice in
different paraphrases) followed by up to {cfg['questions']} questions.{v2}

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
- stops: the share of reading answers after which end-of-text is the most likely next token (greedy
  generation stops on its own).
- instruct: zero-shot instruction following, chat-formatted, scored by `labkit.instructions.score`
  (8 test examples of each kind, per kind below it; compare, filter and verify are the held-out kinds
  of notebook 07). No bar: the base model never saw a chat turn, so it should be poor but above zero.

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

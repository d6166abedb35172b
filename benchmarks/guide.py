"""Write the workshop guide (docs/instructors.md) and the README's notebook table from measurements.

    python benchmarks/guide.py           # rewrite both from benchmarks/measured/course-PROFILE.json
    python benchmarks/guide.py --check   # exit 1 if either is out of date (the tests run this check)

The numbers come only from the regression reports that `python benchmarks/report.py --profile PROFILE
--out benchmarks/measured` writes (time, peak memory, findings held, machine speed per notebook); a
profile without a report is "not measured". The troubleshooting list quotes the errors labkit really
raises: each is produced here by making the mistake.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURED = ROOT / "benchmarks" / "measured"
GUIDE = ROOT / "docs" / "instructors.md"
README = ROOT / "README.md"
START, END = "<!-- notebooks table: written by benchmarks/guide.py -->", "<!-- end of notebooks table -->"
PROFILES = ("ci", "cpu", "gpu")

# What each notebook teaches, in one line (the README's table and the guide say it the same way).
TEACHES = {
    "00_tour": "profiles, the world, the tokenizer, the base model and its card, an explorer widget",
    "01_full_finetuning": "full fine-tuning with `Trainer`: memory bill, one step by hand, live loss plot, metric "
                          "before/after, overfitting and early stopping",
    "02_forgetting": "catastrophic forgetting: capability curves during fine-tuning; full fine-tuning at two learning "
                     "rates, LoRA at two ranks, top layers only, replay; learning vs forgetting",
    "03_lora_rank": "LoRA by hand checked against PEFT, merging, parameter counts, a rank sweep (three alpha "
                    "scalings, two target choices), the rank of full fine-tuning's update, an adapter-size explorer",
    "04_qlora_memory": "where fine-tuning memory goes: weights in fp32/bf16/int8/NF4/FP4/NF4+double quantization, "
                       "measured training peaks, an estimator checked against them, projection to 7B-70B on real "
                       "cards, does 4-bit hurt, a memory calculator",
    "05_rag_vs_finetuning": "new knowledge: closed-book fine-tuning (full, LoRA, paraphrases) vs BM25 and dense "
                            "retrieval vs both; questions without the name; the reversal curse; a two-hop question; "
                            "costs, latency and freshness",
    "06_peft_family": "the PEFT family on one task and one step budget: full, LoRA, DoRA, IA3, prefix and prompt "
                      "tuning, P-tuning, LN tuning and a bottleneck adapter written in the notebook; accuracy "
                      "against trainable parameters, forgetting, memory, speed, serving two adapters, merging",
    "07_instruction_tuning": "instruction tuning with TRL's `SFTTrainer`: the chat template and which tokens train, "
                             "three silent failures refused, zero-/few-shot vs tuned on seen and held-out kinds, "
                             "stopping, assistant-only vs whole-sequence loss, a learning curve, quality vs "
                             "quantity, summaries checked fact by fact",
    "08_preference_tuning": "preference tuning judged by the world's gold reward: SFT, a reward model (TRL's "
                            "`RewardTrainer`) that learned length, RL against it (GRPO) with proxy against gold "
                            "reward, DPO and its beta; gold, length, KL and cost side by side",
    "09_task_heads": "task heads on the course decoder and on MiniLM: classification, entities, extractive QA; "
                     "pretrained vs random body, a learning curve, last- vs first-token pooling, linear probe vs "
                     "top block vs full, the decoder writing the label",
    "10_domain_adaptation": "domain-adaptive continued pretraining on an unlabelled herbal, then the task, across "
                            "labelled-set sizes; the tokenizer extended with the jargon (tokens per word, speed), new "
                            "rows from the mean of their pieces or random; the capability cost and general-text "
                            "replay; save and reload with the tokenizer",
    "11_data_quality_and_bias": "what flawed data does to fine-tuning, against exact truth: label noise for full "
                                "fine-tuning and LoRA and early stopping on clean validation; a slice that never "
                                "shows organisations, scored by group; bias amplification (model rate minus data "
                                "rate) over skew ratios, with rebalancing and counterfactual augmentation",
    "12_scaling_out": "scaling out, for real: the ZeRO paper's accounting, the course's Trainer run launched with "
                      "`accelerate launch` in two processes, the same training as one process, the `--cpu` trap, "
                      "per-process bytes under DDP, ZeRO-1 and FSDP, configs to take to a multi-GPU machine",
    "13_choosing_a_strategy": "choosing a strategy, measured: five kinds of job (new facts, output format, "
                              "classification, domain style, preferences) against prompting, RAG, LoRA, QLoRA, "
                              "full fine-tuning and SFT + DPO, for quality, training and inference cost, the cost "
                              "of a change and forgetting; an advisor ranking them under your constraints",
}


def load_reports(folder: Path = MEASURED) -> dict[str, dict[str, dict]]:
    """{profile: {notebook: report row}} for each profile with a report in ``folder``."""
    out = {}
    for profile in PROFILES:
        path = folder / f"course-{profile}.json"
        if path.exists():
            out[profile] = {row["notebook"]: row for row in json.loads(path.read_text())}
    return out


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def cell(reports: dict, profile: str, name: str, what: str = "time") -> str:
    row = reports.get(profile, {}).get(name)
    if row is None:
        return "not measured"
    if not row["ok"]:
        return "failed"
    return duration(row["seconds"]) if what == "time" else f"{row['peak_gib']:.2f} GiB"


def speeds(reports: dict, profile: str) -> str:
    values = [r["step_s"] for r in reports.get(profile, {}).values() if r.get("step_s")]
    return f"{min(values):.2f}-{max(values):.2f}" if values else "?"


def totals(reports: dict) -> str:
    """One sentence: the whole course's time and the largest peak in each measured profile."""
    parts = []
    for profile in PROFILES:
        rows = reports.get(profile, {}).values()
        if rows:
            parts.append(f"`{profile}` {duration(sum(r['seconds'] for r in rows))} for {len(rows)} notebooks "
                         f"(the longest {duration(max(r['seconds'] for r in rows))}, the largest peak "
                         f"{max(r['peak_gib'] for r in rows):.2f} GiB)")
    return ("The whole course, one notebook after another: " + "; ".join(parts) + ".") if parts else \
        "No profile has been measured yet."


def notebooks_table(reports: dict) -> str:
    lines = ["| notebook | teaches | ci | cpu (2 cores) | gpu (T4) | peak memory (ci / cpu) |",
             "|---|---|---|---|---|---|"]
    for name, teaches in TEACHES.items():
        lines.append(f"| [{name}](notebooks/{name}.ipynb) | {teaches} | {cell(reports, 'ci', name)} | "
                     f"{cell(reports, 'cpu', name)} | {cell(reports, 'gpu', name)} | "
                     f"{cell(reports, 'ci', name, 'peak')} / {cell(reports, 'cpu', name, 'peak')} |")
    made = ", ".join(f"`{p}` at {speeds(reports, p)} s per reference step" for p in PROFILES if p in reports)
    lines += ["", f"Measured by `python benchmarks/report.py --profile PROFILE --out benchmarks/measured` ({made}; "
              "the reference step is one full fine-tuning step of the course model, so a slower machine shows a "
              "larger number and longer times). Peak memory sums papermill, the kernel and every process it "
              "starts: what a 2 GB Binder container holds. The [instructors' guide](docs/instructors.md) has "
              "the details."]
    return "\n".join(lines)


# ---------------------------------------------------------------- troubleshooting, from real errors

def _mistakes():
    """(what happened, the mistake as a function that raises, what to do)."""
    import labkit as lk

    def offline_hub():
        os.environ["HF_HUB_OFFLINE"] = "1"
        lk.load_model("someone/no-such-model")

    def no_data():
        os.environ["LABKIT_DATA"] = str(ROOT / "no-such-folder")
        lk.load_model()

    def no_bitsandbytes():  # as where it is not installed: the import fails
        saved = {m: sys.modules.get(m) for m in ("bitsandbytes", "bitsandbytes.functional")}
        sys.modules.update(dict.fromkeys(saved))
        try:
            lk.quantize.check_backend("nf4")
        finally:
            for module, value in saved.items():
                if value is None:
                    sys.modules.pop(module)
                else:
                    sys.modules[module] = value

    return [
        ("A notebook's `profile` parameter is misspelt", lambda: lk.get_profile("gpu-large"),
         "Use one of the names the message lists; `None` picks `gpu` where CUDA is available, else `cpu`."),
        ("A parameter is out of range", lambda: lk.get_profile("ci", steps=0),
         "Every parameter is checked; the message names the setting and what it must be."),
        ("A parameter that does not exist", lambda: lk.get_profile("ci", lora={"rank": 8}),
         "The message lists the valid settings of that group."),
        ("A hub model with no network (or a wrong id)", offline_hub,
         "Check the id; offline, use the `ci` or `cpu` profile, which run on the shipped course model."),
        ("The course model is not found (labkit installed without a clone, or `LABKIT_DATA` wrong)", no_data,
         "Run from a clone of the course, or set `LABKIT_DATA` to its `data/` folder (the Colab install cell "
         "does this)."),
        ("4-bit or 8-bit weights where bitsandbytes is missing (notebook 04)", no_bitsandbytes,
         "Install it with the command in the message (the `[course]` extra has it); on a machine without "
         "AVX2 or a CUDA GPU, the fp32/bf16 parts of the notebook still run."),
        ("A card the memory calculator does not know", lambda: lk.estimate.calculator(card="RTX 9090 48 GB"),
         "Pick a card from the list, or compare the total in GiB with your card's memory yourself."),
        ("An exercise id mistyped in a check cell", lambda: lk.exercises.check("3.1", None),
         "Use the id printed in the exercise's heading."),
    ]


def troubleshooting() -> list[tuple[str, str, str]]:
    """(situation, the error message labkit gives, what to do), each message produced by its mistake."""
    rows = []
    for situation, mistake, advice in _mistakes():
        saved = dict(os.environ)
        try:
            mistake()
        except Exception as error:  # noqa: BLE001 - the message is what we want
            rows.append((situation, f"{type(error).__name__}: {error}", advice))
        else:
            raise AssertionError(f"no error for: {situation}")
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return rows


# ---------------------------------------------------------------- the guide

def guide(reports: dict) -> str:
    from labkit.views.exercises import EXERCISES

    ci, cpu = reports.get("ci", {}), reports.get("cpu", {})
    lines = [
        "# Instructors' guide", "",
        "Written by `python benchmarks/guide.py` from the regression reports in `benchmarks/measured/` "
        "(do not edit by hand: rerun the reports, then the script). Times are wall-clock on a 2-core machine; "
        f"machine speed during the runs: `ci` {speeds(reports, 'ci')} and `cpu` {speeds(reports, 'cpu')} s per "
        "reference step (the seconds of one full fine-tuning step of the course model, measured before each "
        "notebook; times scale with it, and shared machines vary from day to day).", "",
        totals(reports), "",
        "## Choosing a profile for the room", "",
        "- `ci`: minutes, small data; every finding is asserted in this profile by the tests. Use it for a live "
        "demo, on Binder, or when the room's machines are slow.",
        "- `cpu`: the default without a GPU (Binder, laptops): more data and steps, the same code.",
        "- `gpu`: the default on Colab's T4: real hub models (SmolLM2) through the same code; times "
        "not measured yet unless the table says so.", "",
        "Set it in each notebook's parameters cell (`profile = \"ci\"`) or headless with "
        "`papermill NOTEBOOK out.ipynb -p profile ci`.", "",
        "## Per notebook", "",
        "| notebook | ci | cpu | gpu | peak memory ci | peak memory cpu | findings held (ci / cpu) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in TEACHES:
        held = " / ".join(f"{sum(r[name]['held'].values())} of {len(r[name]['held'])}" if name in r else "-"
                          for r in (ci, cpu))
        lines.append(f"| {name} | {cell(reports, 'ci', name)} | {cell(reports, 'cpu', name)} | "
                     f"{cell(reports, 'gpu', name)} | {cell(reports, 'ci', name, 'peak')} | "
                     f"{cell(reports, 'cpu', name, 'peak')} | {held} |")
    lines += ["", "A finding's thresholds are set for `ci`; in `cpu` a finding that does not hold says the "
              "ci-sized claim differs there (the report in `benchmarks/measured/course-cpu.md` says which, with "
              "the numbers).", ""]
    for name, teaches in TEACHES.items():
        lines += [f"### {name}", "", f"Teaches: {teaches}.", "",
                  f"Time: `ci` {cell(reports, 'ci', name)}, `cpu` {cell(reports, 'cpu', name)}, `gpu` "
                  f"{cell(reports, 'gpu', name)}. Peak memory: `ci` {cell(reports, 'ci', name, 'peak')}, `cpu` "
                  f"{cell(reports, 'cpu', name, 'peak')}.", "", "Exercises (solutions in "
                  f"[`solutions/{name}.py`](../solutions/{name}.py)):"]
        lines += [f"- {ex_id}: {ex.task}" for ex_id, ex in EXERCISES.items() if ex.notebook == name]
        failed = [n for n, ok in cpu.get(name, {}).get("held", {}).items() if not ok]
        if failed:
            names = ", ".join(f"`{f}`" for f in failed)
            lines += ["", f"In `cpu`, these ci-sized findings did not hold: {names}."]
        lines.append("")
    over = [n for n in TEACHES for p in ("ci", "cpu") if n in reports.get(p, {}) and reports[p][n]["peak_gib"] > 1.86]
    lines += [
        "## Binder", "",
        "- 2 GB of memory per user (1.86 GiB): a notebook that goes over it is restarted without warning "
        "(\"kernel died\"). " + ("Every notebook measured here stays under it in both profiles." if not over else
                                 "Over it: " + ", ".join(sorted(set(over))) + ": use `ci` there."),
        "- Idle sessions are culled after about 10 minutes: ask learners to keep the tab active, and to "
        "download any notebook they changed.",
        "- About 100 concurrent users per repository: for a larger room, split it between Binder and Colab, "
        "or start sessions in waves a few minutes apart (the image builds once; later launches are quick).",
        "- Launch the Binder link once before the session so the image is built and cached.", "",
        "## Colab", "",
        "- The first cell installs the course at its release tag with the `[course]` extra and keeps "
        "Colab's torch; after a runtime restart, running it again does nothing new.",
        "- Choose a GPU runtime (T4) for the `gpu` profile: a T4 trains in fp16 with a loss scaler (its bf16 "
        "is only emulated), and `lk.doctor()` says which precision it gets.",
        "- Notebook 12 runs its two processes on the CPU on a one-GPU machine such as Colab's.", "",
        "## When a cell fails", "",
        "Start with the second cell's `lk.doctor(...)` report: versions, device, profile, expected time, and "
        "anything missing with the command that installs it. The errors labkit raises are one sentence "
        "each; the common ones, as the learner sees them:", "",
        "| what happened | the message | what to do |", "|---|---|---|"]
    for situation, message, advice in troubleshooting():
        message = message.replace("|", "\\|").replace(str(ROOT), "<course>")
        lines.append(f"| {situation} | {message} | {advice} |")
    lines += [
        "", "Outside labkit:", "",
        "- \"Kernel died\" on Binder: the notebook went over 2 GB; use the `ci` profile there.",
        "- A widget shows nothing: run `lk.doctor()`; the widgets are tested with ipywidgets 7.7 (Colab) and 8.",
        "- A cell seems stuck: training cells print a progress bar; the profile's expected time is printed at "
        "the top of each notebook.", ""]
    return "\n".join(lines)


def readme_with_table(readme: str, table: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"README.md has no {START} ... {END} block for the table")
    head, rest = readme.split(START, 1)
    return head + START + "\n" + table + "\n" + END + rest.split(END, 1)[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the guide or the README table is stale")
    ns = parser.parse_args(argv)
    reports = load_reports()
    wanted = {GUIDE: guide(reports), README: readme_with_table(README.read_text(), notebooks_table(reports))}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    if ns.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} is out of date: run python benchmarks/guide.py", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(wanted[p])
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every source notebook is committed clean: no outputs, one parameters cell, a kernelspec."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("name", NAMES)
def test_source_notebook_is_clean(name):
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    assert "profile" in "".join(tagged[0]["source"]) and "output_dir" in "".join(tagged[0]["source"])
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


# ---------------------------------------------------------------- numbers in the prose are the run's

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?%?")
# Numbers a notebook's markdown may state without its run producing them, each with its source.
# Integers 0-10 are exempt everywhere: list numbering and counts in prose ("two runs", "step 1").
STATED_ELSEWHERE = {
    "00_tour": {135: "the name of a hub model (SmolLM2-135M)"},
    "01_full_finetuning": {1980: "the record format's example value (`year 1980`)"},
    "02_forgetting": {2024: "publication year of a cited paper (Biderman et al. 2024)",
                      64: "a rank for the learner to try, not a result"},
    "03_lora_rank": {2021: "LoRA paper (Hu et al. 2021)", 2023: "rsLoRA paper (Kalajdzievski 2023)",
                     4096: "Llama-2-7B's published hidden width"},
    "04_qlora_memory": {64: "NF4's block size (QLoRA paper, section 3)",
                        256: "double quantization's block of absmaxes (QLoRA paper, section 3)",
                        49: "SmolLM2's published vocabulary (49k tokens)", 576: "SmolLM2-135M's published width",
                        28: "SmolLM2-135M's embedding parameters (49k x 576 = 28M)",
                        0.3: "a typical CUDA context (0.3-0.5 GiB)",
                        0.9: "the share of a card the verdicts count as usable (labkit's estimate, stated as 90%)"},
    "05_rag_vs_finetuning": {2023: "publication year of cited papers", 120: "steps for the learner to try",
                             2024: "the two-hop curse paper (Balesni et al. 2024)"},
    "06_peft_family": {2019: "adapters paper (Houlsby et al. 2019)", 2021: "prompt tuning paper (Lester et al. 2021)",
                       1970: "the record format's example value (`year 1970`)"},
    "07_instruction_tuning": {2020: "GPT-3 paper (Brown et al. 2020)", 2021: "FLAN paper (Wei et al. 2021)",
                              2023: "LIMA paper (Zhou et al. 2023)",
                              2024: "loss over instructions (Shi et al. 2024; Huerta-Enochian and Ko 2024)",
                              120: "steps for the learner to try", 128: "a curve size for the learner to try",
                              0.9: "a sloppy share for the learner to try"},
    "08_preference_tuning": {2022: "InstructGPT paper (Ouyang et al. 2022)",
                             2023: "DPO paper (Rafailov et al. 2023), over-optimisation paper (Gao et al. 2023)",
                             2024: "GRPO paper (Shao et al. 2024)", 1.13: "the TRL release that removed PPO"},
    "10_domain_adaptation": {2020: "DAPT paper (Gururangan et al. 2020)", 2021: "new-embedding note (Hewitt 2021)",
                             2022: "vocabulary transfer paper (Gee et al. 2022)",
                             3.1: "the cited paper's title (Physics of Language Models, part 3.1)",
                             1e-3: "a learning rate for the learner to try"},
    "11_data_quality_and_bias": {2017: "bias amplification paper (Zhao et al. 2017)",
                                 2018: "counterfactual augmentation paper (Zhao et al. 2018)",
                                 11: "the seed sweep's confirmation seeds (11-14)", 14: "the seed sweep's seeds",
                                 0.2: "a designed bound of the tests (half the labels wrong costs 0.2)",
                                 0.15: "a designed bound of the tests (a quarter wrong costs at most 0.15)",
                                 0.32: "the seed sweep's table (largest rescue, largest rise)",
                                 -0.002: "the seed sweep's table (smallest rise of the expected rate)"},
    "12_scaling_out": {2020: "ZeRO paper (Rajbhandari et al. 2020)", 80: "an 80 GB card's capacity (80 GiB)",
                       16: "bytes per parameter without ZeRO: 2 + 2 + 12, the table above it",
                       77: "DeepSpeed's CPU Adam compile time measured on this stack (the course's design notes)"},
    "13_choosing_a_strategy": {16: "a T4's memory (16 GiB), the exercise's card",
                               512: "the sequence length notebook 04's estimator is asked about"},
}


def _numbers(text: str) -> set[float]:
    out = set()
    for token in NUMBER.findall(text):
        if token.endswith("%"):
            out |= {float(token[:-1]), float(token[:-1]) / 100}
        else:
            out.add(float(token))
    return out


def unproduced_numbers(nb: dict, allowed=()) -> list[str]:
    """Numbers in the markdown of executed notebook ``nb`` that neither its code (constants, settings)
    nor its outputs contain, leaving out integers 0-10 and the ``allowed`` values."""
    markdown = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    markdown = re.sub(r"\]\([^)]*\)", "]", markdown)  # link targets are addresses, not statements
    produced = set(allowed)
    for cell in (c for c in nb["cells"] if c["cell_type"] == "code"):
        produced |= _numbers("".join(cell["source"]))
        for out in cell.get("outputs", []):
            produced |= _numbers("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", "")))
    return [t for t in NUMBER.findall(markdown)
            if not (t.isdigit() and int(t) <= 10) and not _numbers(t) & produced]


def test_unproduced_numbers_finds_a_number_the_run_did_not_print():
    cell = lambda kind, text, out="": {"cell_type": kind, "source": [text],  # noqa: E731
                                       "outputs": [{"text": out}] if kind == "code" else []}
    nb = {"cells": [cell("markdown", "Recall fell to 0.42 in 3 steps, at lr 1e-3 (50% of 0.84)."),
                    cell("code", "lr = 1e-3", "recall 0.84 -> 0.42, 0.50 lost")]}
    assert unproduced_numbers(nb) == []
    nb["cells"][0]["source"] = ["Recall fell to 0.37, lost 60% of it, over 500 steps (Smith 2023)."]
    assert unproduced_numbers(nb) == ["0.37", "60%", "500", "2023"]
    assert unproduced_numbers(nb, allowed={2023, 500, 0.37, 0.6}) == []


@pytest.mark.notebook
@pytest.mark.parametrize("name", NAMES)
def test_markdown_states_only_numbers_the_run_produced(name, tmp_path_factory):
    from conftest import executed_notebook

    missing = unproduced_numbers(executed_notebook(name, tmp_path_factory), STATED_ELSEWHERE.get(name, {}))
    assert not missing, f"{name}: its markdown states {missing}, which neither its code nor its outputs contain"

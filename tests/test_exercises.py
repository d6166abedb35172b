"""Every notebook's exercises, checked both ways: the blank stub fails its check, the solution in
solutions/ passes it; plausible wrong answers fail too, and a check never crashes a notebook."""

import json
from pathlib import Path

import pytest

import labkit as lk
from labkit.views import exercises as E

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def cells_of(path):
    return E.exercise_cells(json.loads(path.read_text()))


FOUND = [(path.stem, ex_id, stub, check) for path in NOTEBOOKS for ex_id, stub, check in cells_of(path)]


def run(stub_source: str, check_source: str) -> bool:
    """Execute an exercise cell as the notebook would (only ``lk`` defined), then its check cell."""
    namespace = {"lk": lk}
    exec(stub_source, namespace)
    return eval(check_source.strip().rstrip(";"), namespace)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_at_least_two_exercises_each_registered_and_solved(path):
    found = cells_of(path)
    assert len(found) >= 2, f"{path.stem} has {len(found)} exercises"
    solutions = E.read_solutions(ROOT / "solutions" / f"{path.stem}.py")
    for ex_id, _, _ in found:
        assert E.EXERCISES[ex_id].notebook == path.stem
        assert ex_id in solutions, f"no solution for {ex_id}"


def test_every_registered_exercise_is_in_its_notebook_once():
    ids = [ex_id for _, ex_id, _, _ in FOUND]
    assert sorted(ids) == sorted(E.EXERCISES) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("notebook, ex_id, stub, check", FOUND, ids=[f[1] for f in FOUND])
def test_the_stub_fails_and_the_solution_passes(notebook, ex_id, stub, check, capsys):
    check_source = "".join(check["source"])
    assert run("".join(stub["source"]), check_source) is False
    assert "not yet" in capsys.readouterr().out
    solution = E.read_solutions(ROOT / "solutions" / f"{notebook}.py")[ex_id]
    assert run(solution, check_source) is True
    assert "right" in capsys.readouterr().out


# Plausible mistakes, one per kind of check: each must be caught.
WRONG = {
    "00.1": "def count_tokens(tokenizer, text):\n    return len(tokenizer.tokenize(text))",  # forgets <bos>
    "00.2": "def exact_match(p, r):\n    return p.strip().lower() == r.strip().lower()",  # not strict
    "01.1": "def adamw_bytes(n):\n    return 12 * n",  # forgets the gradients
    "01.2": "def make_example(p, c):\n    return {'input_ids': p + c, 'labels': p + c}",  # no mask
    "02.1": "def fell_steadily(values, tolerance):\n    return values == sorted(values, reverse=True)",
    "02.2": "def mix_replay(new, old, fraction):\n    return new + old[:int(fraction * len(new))]",  # adds
    "03.1": "def lora_parameters(d_in, d_out, rank):\n    return rank * d_in * d_out",
    "03.2": "def lora_forward(x, W, A, B, s):\n    return x @ W.T + (x @ A.T) @ B.T",  # no scale
    "04.1": "def bits_per_parameter(double_quant, blocksize=64):\n    return 4.0",
    "04.2": "fits_t4 = {'full', 'lora', 'qlora'}",
    "05.1": "def recall_at_k(retrieved, gold, k):\n    return sum(r[0] == g for r, g in zip(retrieved, gold)) / 4",
    "05.2": "def rag_prompt(passages, question):\n    return ' '.join(passages) + ' ' + question",
    "06.1": "def trainable_share(model):\n    return 1.0",
    "06.2": "def pareto_front(points):\n    return sorted(points)",
    "07.1": "def assistant_only_labels(ids, mask):\n    return [i if m else 0 for i, m in zip(ids, mask)]",  # 0 trains
    "07.2": "def fact_precision_recall(w, t, x):\n    return len(w & x) / len(w), len(w & x) / len(x)",  # vs reference
    "08.1": "def bradley_terry_loss(c, r):\n    import math\n    return math.log1p(math.exp(c - r))",  # sign
    "08.2": "def dpo_loss(pc, pr, rc, rr, beta):\n    import math\n    return math.log1p(math.exp(-beta * (pc - pr)))",
    "09.1": "def first_token_labels(w, y):\n    return [-100 if i is None else y[i] for i in w]",  # tags every piece
    "09.2": "def pooled_positions(masks):\n    return [len(m) - 1 for m in masks]",  # reads the padding
    "10.1": "def mean_init_row(e, ids):\n    return e[ids].mean(1)",  # averages within each row
    "10.2": "def general_words(d, share):\n    return d * share",  # a share of the domain text, not of the mix
    "11.1": "def she_rate(p, s):\n    return sum(x == 'she' for x in p) / len(p)",  # over every sector
    "11.2": "def augment(examples):\n    return examples + [dict(e, pronoun='she') for e in examples]",  # one more
    "12.1": "def zero_bytes_per_device(n, devices, stage):\n    return 16 * n / devices",
    "12.2": "gb_per_gpu = 16 * 70 / 1",
    "13.1": "def pick_best(rows, task):\n    return max(rows, key=lambda r: r['quality'])['strategy']",  # perplexity
    "13.2": "fits_16_gib = {'QLoRA'}",  # forgets that LoRA's frozen base is only the bf16 weights
}


@pytest.mark.parametrize("notebook, ex_id, stub, check", FOUND, ids=[f[1] for f in FOUND])
def test_a_plausible_mistake_fails_with_a_hint(notebook, ex_id, stub, check, capsys):
    assert ex_id in WRONG, f"add a plausible wrong answer for {ex_id}"
    assert run(WRONG[ex_id], "".join(check["source"])) is False
    out = capsys.readouterr().out
    assert "not yet" in out and "Hint:" in out


def test_a_check_reports_the_learners_error_instead_of_raising(capsys):
    def broken(d_in, d_out, rank):
        raise KeyError("oops")

    assert E.check("03.1", broken) is False
    assert "raised KeyError" in capsys.readouterr().out
    assert E.check("03.1", 42) is False  # not a function
    with pytest.raises(ValueError, match="Unknown exercise '99.9'"):
        E.check("99.9", None)


def test_a_prediction_says_too_high_or_too_low(capsys):
    assert E.check("12.2", 1000) is False and "too high" in capsys.readouterr().out
    assert E.check("12.2", 1) is False and "too low" in capsys.readouterr().out
    assert E.check("12.2", "140") is False and "expected a number" in capsys.readouterr().out


def test_the_solved_copy_replaces_only_the_exercise_cells(tmp_path):
    path = ROOT / "notebooks" / "03_lora_rank.ipynb"
    E.main([str(path), "--out", str(tmp_path / "solved.ipynb")])
    original, solved = json.loads(path.read_text()), json.loads((tmp_path / "solved.ipynb").read_text())
    changed = [a["id"] for a, b in zip(original["cells"], solved["cells"]) if a["source"] != b["source"]]
    assert changed == [stub["id"] for _, stub, _ in cells_of(path)]
    assert all("..." not in "".join(stub["source"]) for _, stub, _ in E.exercise_cells(solved))

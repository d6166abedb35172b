"""labkit.topics.scaling: the ZeRO accounting, the checks that compare runs, and the launch configs."""

import json

import pytest
import torch

from labkit.engine import memory
from labkit.topics import scaling


def test_zero_bytes_divides_one_more_part_at_each_stage():
    n, d = 1000, 4
    parts = {s: scaling.zero_bytes(n, d, s) for s in scaling.STAGES}
    assert parts[0] == {"weights": 2000, "gradients": 2000, "optimizer": 12000, "total": 16000}
    assert parts[1]["optimizer"] == 3000 and parts[1]["gradients"] == 2000
    assert parts[2]["gradients"] == 500 and parts[2]["weights"] == 2000
    assert parts[3] == {"weights": 500, "gradients": 500, "optimizer": 3000, "total": 4000}
    assert scaling.zero_bytes(n, 1, 3) == parts[0]  # one device: nothing to divide


def test_zero_bytes_reproduces_the_papers_figure_1():
    for stage, (ours, paper) in scaling.paper_figure_1().items():
        assert ours == pytest.approx(paper, abs=0.05), stage  # the paper rounds to one decimal


def test_zero_bytes_refuses_a_bad_stage_or_device_count():
    with pytest.raises(ValueError, match=r"choose one of \(0, 1, 2, 3\)"):
        scaling.zero_bytes(10, 2, 4)
    with pytest.raises(ValueError, match="at least 1"):
        scaling.zero_bytes(10, 0, 1)


def _run(tmp_path, name, losses, weights, moved=1.0, ranks=(0,), world=1, pids=None):
    from safetensors.torch import save_file

    out = tmp_path / name
    out.mkdir()
    for i, rank in enumerate(ranks):
        pid = (pids or [100 + r for r in ranks])[i]
        (out / f"process-{rank}.json").write_text(json.dumps(
            {"rank": rank, "world_size": world, "pid": pid, "backend": "gloo" if world > 1 else None,
             "losses": losses, "moved": moved}))
    save_file({"w": torch.tensor(weights)}, str(out / "weights.safetensors"))
    return scaling.read_run(out)


def test_same_training_tells_a_tiny_gap_from_a_different_run(tmp_path):
    ref = _run(tmp_path, "ref", [3.0, 2.0], [1.0, 1.0], moved=2.0)
    close = _run(tmp_path, "close", [3.0, 2.0 + 1e-6], [1.0, 1.0 + 1e-4], ranks=(0, 1), world=2)
    far = _run(tmp_path, "far", [3.0, 2.5], [2.0, 1.0])
    c, f = scaling.same_training(close, ref, 0.01), scaling.same_training(far, ref, 0.01)
    assert c["same"] and c["share_of_move"] == pytest.approx(1e-4 / 2.0, rel=1e-3)
    assert not f["same"] and f["share_of_move"] == pytest.approx(0.5) and f["loss_gap"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="number of steps"):
        scaling.same_training(_run(tmp_path, "short", [3.0], [1.0, 1.0]), ref, 0.01)


def test_processes_disagreeing_on_their_losses_are_not_the_same_training(tmp_path):
    ref = _run(tmp_path, "ref", [3.0, 2.0], [1.0, 1.0])
    split = _run(tmp_path, "split", [3.0, 2.0], [1.0, 1.0], ranks=(0, 1), world=2)
    (tmp_path / "split" / "process-1.json").write_text(json.dumps(
        {"rank": 1, "world_size": 2, "pid": 9, "backend": "gloo", "losses": [3.0, 2.1], "moved": 1.0}))
    assert not scaling.same_training(scaling.read_run(tmp_path / "split"), ref, 0.01)["same"]
    assert scaling.same_training(split, ref, 0.01)["same"]


def test_processes_check_sees_a_silent_single_process_launch(tmp_path):
    two = scaling.processes_check(_run(tmp_path, "two", [1.0], [0.0], ranks=(0, 1), world=2))
    one = scaling.processes_check(_run(tmp_path, "one", [1.0], [0.0]))
    assert (two["processes"], two["distinct_pids"], two["world_sizes"]) == (2, 2, [2])
    assert (one["processes"], one["distinct_pids"], one["world_sizes"]) == (1, 1, [1])
    with pytest.raises(FileNotFoundError, match="launch failed"):
        scaling.read_run(tmp_path / "nothing")


def test_held_bytes_counts_tied_weights_once_and_zero_redundancy_states_of_its_shard():
    lin = torch.nn.Linear(4, 4, bias=False)
    model = torch.nn.Sequential(lin, torch.nn.Linear(4, 4, bias=False))
    model[1].weight = lin.weight  # tied: one tensor, two places
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    assert memory.held_bytes(model, opt) == {"weights": 64, "gradients": 64, "optimizer": 128}

    class Sharded:  # the shape of ZeroRedundancyOptimizer: this process's states live in .optim
        optim = opt
        state = {}  # what the wrapper itself exposes is not counted

    assert memory.held_bytes(model, Sharded())["optimizer"] == 128


def test_measured_vs_estimate_compares_every_part(tmp_path):
    n = 1000
    held = {"DDP": {"weights": 4 * n, "gradients": 4 * n, "optimizer": 8 * n},
            "ZeRO-1": {"weights": 4 * n, "gradients": 4 * n, "optimizer": 4 * n + 16},
            "FSDP": {"weights": 2 * n, "gradients": 2 * n, "optimizer": 4 * n}}
    rows = scaling.measured_vs_estimate([{"rank": 0, "held": held}, {"rank": 1, "held": held}], n)
    assert len(rows) == 9 and {r["sharding"] for r in rows} == set(scaling.SHARDINGS)
    errors = {(r["sharding"], r["part"]): r["error"] for r in rows}
    assert errors[("ZeRO-1", "optimizer")] == pytest.approx(16 / (4 * n))
    assert all(e == 0 for k, e in errors.items() if k != ("ZeRO-1", "optimizer"))


def test_the_configs_load_as_their_tools_load_them(tmp_path):
    paths = scaling.write_configs(tmp_path, gpus=4)
    loaded = {p.name: scaling.load_config(p) for p in paths}
    assert loaded["accelerate_ddp.yaml"] == {"kind": "MULTI_GPU", "zero_stage": 0, "processes": 4}
    assert loaded["accelerate_fsdp.yaml"] == {"kind": "FSDP", "zero_stage": 3, "processes": 4}
    assert loaded["deepspeed_zero2.json"]["zero_stage"] == 2 and loaded["deepspeed_zero3.json"]["zero_stage"] == 3


def test_a_misspelt_config_fails_when_loaded(tmp_path):
    import yaml

    scaling.write_configs(tmp_path)
    path = tmp_path / "accelerate_fsdp.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["fsdp_config"]["fsdp_auto_wrap_policy"] = "TRANSFORMER_WRAP"  # not a policy accelerate knows
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(Exception):  # noqa: B017 - accelerate raises its own error types
        scaling.load_config(path)
    with pytest.raises(ValueError, match="mixed precision"):
        scaling.configs(mixed_precision="fp8")


def test_the_launch_command_asks_for_several_processes_the_way_that_works():
    argv, env = scaling.command("train", "/tmp/x", 2, steps=3)
    assert "--multi_gpu" in argv and "--cpu" not in argv and argv[argv.index("--num_processes") + 1] == "2"
    assert argv[-2:] == ["--steps", "3"] and env["OMP_NUM_THREADS"] == "1"
    assert env["MALLOC_MMAP_THRESHOLD_"] == "65536"  # freed tensors go back to the system (memory budget)
    trap, _ = scaling.command("train", "/tmp/x", 2, cpu_flag=True)
    assert "--cpu" in trap and "--multi_gpu" not in trap
    one, _ = scaling.command("train", "/tmp/x", 1)
    assert one[1:4] == ["-m", "labkit.topics.scaling", "train"]  # one process: no launcher
    with pytest.raises(ValueError, match="processes"):
        scaling.command("train", "/tmp/x", 0)


def test_the_launched_scripts_do_without_the_packages_they_never_use():
    """transformers imports PEFT, bitsandbytes, datasets and SciPy whenever they are installed (~0.13 GB in each
    launched process, which notebook 12's memory budget cannot spare); hidden, transformers sees them as absent,
    and a package already imported is left alone. In a fresh process, as a launched script is."""
    import subprocess
    import sys

    code = ("import importlib.util, json, sys; from labkit.topics import scaling; "
            "scaling.hide_unused_packages((*scaling.UNUSED_IN_LAUNCHED, 'json')); "
            "from transformers.utils import import_utils as u; "
            "print(json.dumps([[importlib.util.find_spec(n) is None for n in scaling.UNUSED_IN_LAUNCHED], "
            "u.is_peft_available(), u.is_datasets_available(), u.is_scipy_available(), "
            "sys.modules['json'] is json]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    hidden, peft, datasets, scipy, kept = json.loads(out.strip().splitlines()[-1])
    assert set(scaling.UNUSED_IN_LAUNCHED) == {"peft", "bitsandbytes", "datasets", "scipy"}
    assert all(hidden) and not (peft or datasets or scipy) and kept


@pytest.mark.slow
def test_a_failed_launch_is_one_sentence_naming_it(tmp_path):
    with pytest.raises(RuntimeError, match=r"launch of 'nonsense' \(1 process\) failed .*invalid choice: 'nonsense'"):
        scaling.launch(dict(script="nonsense", out=tmp_path, processes=1))

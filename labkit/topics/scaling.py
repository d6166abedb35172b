"""Scaling out: data parallelism, ZeRO and FSDP, run for real in several processes.

``python -m labkit.topics.scaling train ...`` is the training script notebook 12 launches with
``accelerate launch``: the course's own Trainer run (``lk.train.fit``), which becomes distributed data
parallel (DDP) when it finds itself in a multi-process launch. Each process writes what it was (rank,
world size, process id), its loss at every step and, on rank 0, the final weights, so the notebook can
check that two processes train exactly like one process with the same global batch.
``python -m labkit.topics.scaling shard ...`` trains one step three ways in each process (DDP,
ZeRO-1 via PyTorch's ``ZeroRedundancyOptimizer``, ZeRO-3 via PyTorch's FSDP ``fully_shard``) and
counts the bytes of weights, gradients and optimizer state each process holds. ``zero_bytes`` is
the ZeRO paper's per-device accounting (Rajbhandari et al. 2020). Introduced in notebook 12_scaling_out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from labkit.engine.memory import held_bytes

# What notebook 12 saves in results.json (lk.records.save_results checks it).
RESULTS = {"profile": str, "seed": int, "processes": dict, "trap": dict, "same": dict, "control": dict,
           "tolerance": float, "shards": list, "paper_figure_1": dict, "big_model": dict, "configs": dict,
           "launch_seconds": dict}

STAGES = (0, 1, 2, 3)  # 0: plain data parallelism; 1: optimizer state sharded; 2: + gradients; 3: + weights


def zero_bytes(parameters: float, devices: int, stage: int, weight_bytes: float = 2, grad_bytes: float = 2,
               optimizer_bytes: float = 12) -> dict:
    """Bytes one device holds for the model states under ZeRO ``stage`` (the paper's accounting, no
    activations): weights, gradients and optimizer state, each divided among ``devices`` from the stage
    that shards it. Defaults are the paper's mixed-precision Adam: 2 + 2 bytes of fp16 weights and
    gradients and K = 12 bytes of fp32 master weights, momentum and variance per parameter."""
    if stage not in STAGES:
        raise ValueError(f"Unknown ZeRO stage {stage!r}: choose one of {STAGES}.")
    if devices < 1:
        raise ValueError(f"devices must be at least 1, got {devices!r}.")
    share = {part: (1 / devices if stage >= k else 1.0) for part, k in
             (("optimizer", 1), ("gradients", 2), ("weights", 3))}
    out = {"weights": parameters * weight_bytes * share["weights"],
           "gradients": parameters * grad_bytes * share["gradients"],
           "optimizer": parameters * optimizer_bytes * share["optimizer"]}
    return out | {"total": sum(out.values())}


# --- the training script the notebook launches, and what it leaves behind ---

def _task(n: int, seed: int):
    from labkit.core import world as W
    from labkit.topics.finetuning import record_pairs

    return record_pairs(W.make_world(0), n, f"scaling-{seed}")


def _whoami() -> dict:
    import torch.distributed as dist

    on = dist.is_available() and dist.is_initialized()
    return {"rank": dist.get_rank() if on else 0, "world_size": dist.get_world_size() if on else 1,
            "pid": os.getpid(), "backend": dist.get_backend() if on else None}


def train(out: str | Path, *, steps: int, batch: int, accum: int = 1, lr: float = 1e-3, examples: int = 64,
          seed: int = 0) -> dict:
    """One process's share of a Trainer run of the record task (``lk.train.fit``; distributed data
    parallel when launched in several processes). Writes ``process-RANK.json`` (rank, world size,
    process id, the loss at every step, the model's parameter count) into ``out``, and rank 0 the final
    weights; returns the record."""
    from safetensors.torch import save_model

    from labkit.engine.callbacks import LossHistory
    from labkit.engine.train import count_parameters, fit
    from labkit.model.loading import load_model

    model, tok = load_model()
    start = {k: v.detach().clone() for k, v in model.named_parameters()}  # tied weights once
    history = LossHistory()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run = fit(model, tok, _task(examples, seed), out_dir=str(out / "trainer"), steps=steps, batch_size=batch,
              lr=lr, seed=seed, progress=False, logging_strategy="steps", logging_steps=1,
              gradient_accumulation_steps=accum, callbacks=[history])
    moved = l2_distance({k: v.detach() for k, v in model.named_parameters()}, start)
    record = _whoami() | {"losses": [loss for _, loss in history.train], "steps": run.steps,
                          "seconds": run.seconds, "batch": batch, "accum": accum,
                          "moved": moved,  # moved: L2 norm of the whole update
                          "parameters": count_parameters(model)["total"]}  # so the kernel need not load the model
    (out / f"process-{record['rank']}.json").write_text(json.dumps(record))
    if record["rank"] == 0:
        save_model(model, str(out / "weights.safetensors"))  # tied embeddings saved once
    return record


def read_run(out: str | Path) -> dict:
    """What a run left in ``out``: {"processes": [records by rank], "weights": path}."""
    out = Path(out)
    records = sorted((json.loads(p.read_text()) for p in out.glob("process-*.json")), key=lambda r: r["rank"])
    if not records:
        raise FileNotFoundError(f"No process wrote its record into {out}: the launch failed (see its stderr).")
    return {"processes": records, "weights": str(out / "weights.safetensors")}


def processes_check(run: dict) -> dict:
    """How many processes really trained: their count, distinct process ids and the world size each saw
    (a launch that silently ran one process shows 1 everywhere)."""
    procs = run["processes"]
    return {"processes": len(procs), "distinct_pids": len({p["pid"] for p in procs}),
            "world_sizes": sorted({p["world_size"] for p in procs}), "ranks": [p["rank"] for p in procs],
            "backend": procs[0]["backend"]}


def l2_distance(a: dict, b: dict) -> float:
    """The L2 norm of the difference between two sets of named tensors (the same names)."""
    return sum(((a[k] - b[k]) ** 2).sum().item() for k in a) ** 0.5


def weights_gap(a: str | Path, b: str | Path) -> float:
    """The L2 norm of the difference between two runs' final weights (safetensors files)."""
    from safetensors.torch import load_file

    wa, wb = load_file(str(a)), load_file(str(b))
    if set(wa) != set(wb):
        raise ValueError("The two runs saved different tensors: not the same model.")
    return l2_distance(wa, wb)


def same_training(run: dict, reference: dict, tolerance: float) -> dict:
    """``run`` against ``reference``: the largest gap between their loss curves, the distance between
    their final weights, and that distance as a share of how far training moved the reference's weights
    (L2 norms); ``same`` when that share is at most ``tolerance`` and every process of ``run`` logged
    the same losses."""
    ours, theirs = run["processes"][0]["losses"], reference["processes"][0]["losses"]
    if len(ours) != len(theirs):
        raise ValueError(f"The runs logged {len(ours)} and {len(theirs)} losses: not the same number of steps.")
    weights = weights_gap(run["weights"], reference["weights"])
    share = weights / reference["processes"][0]["moved"]
    agree = all(p["losses"] == ours for p in run["processes"])
    return {"loss_gap": max(abs(x - y) for x, y in zip(ours, theirs)), "weights_gap": weights,
            "share_of_move": share, "processes_agree": agree, "same": share <= tolerance and agree}


# --- ZeRO and FSDP: what each process holds, measured ---

SHARDINGS = ("DDP", "ZeRO-1", "FSDP")  # measured; their ZeRO stages: 0, 1, 3
STAGE_OF = {"DDP": 0, "ZeRO-1": 1, "FSDP": 3}


def shard(out: str | Path, seed: int = 0) -> dict:
    """In each process of a launch: one AdamW step of the course model three ways (DDP; ZeRO-1 with
    PyTorch's ``ZeroRedundancyOptimizer``; FSDP with PyTorch's ``fully_shard``, which shards weights,
    gradients and optimizer state like ZeRO-3) and the bytes each way holds after the step. Writes
    ``shard-RANK.json`` into ``out``."""
    import torch
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel

    from labkit.model.loading import load_model

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    _, tok = load_model()
    pairs = _task(4, seed)
    batch = tok([f"{p} {a}" for p, a in pairs], return_tensors="pt", padding=True)

    def step(model, optimizer):
        model(**batch, labels=batch["input_ids"]).loss.backward()
        optimizer.step()
        return held_bytes(model, optimizer)

    held = {}
    for way in SHARDINGS:
        model, _ = load_model()
        if way == "FSDP":
            for layer in model.model.layers:  # one shard group per block, then the rest (embeddings, norm)
                fully_shard(layer)
            fully_shard(model)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        else:
            model = DistributedDataParallel(model)
            optimizer = (torch.optim.AdamW(model.parameters(), lr=1e-4) if way == "DDP" else
                         ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.AdamW, lr=1e-4))
        held[way] = step(model, optimizer)
    record = _whoami() | {"held": held}
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / f"shard-{record['rank']}.json").write_text(json.dumps(record))
    dist.destroy_process_group()
    return record


def read_shards(out: str | Path) -> list[dict]:
    """The ``shard`` records a launch left in ``out``, by rank."""
    records = sorted((json.loads(p.read_text()) for p in Path(out).glob("shard-*.json")), key=lambda r: r["rank"])
    if not records:
        raise FileNotFoundError(f"No process wrote its shard record into {out}: the launch failed.")
    return records


def measured_vs_estimate(records: list[dict], parameters: int) -> list[dict]:
    """Per sharding and part: the bytes each process held (largest over processes) against
    ``zero_bytes`` for fp32 AdamW (4 + 4 bytes of weights and gradients, 8 of optimizer state)."""
    devices = len(records)
    rows = []
    for way in SHARDINGS:
        estimate = zero_bytes(parameters, devices, STAGE_OF[way], weight_bytes=4, grad_bytes=4, optimizer_bytes=8)
        for part in ("weights", "gradients", "optimizer"):
            held = max(r["held"][way][part] for r in records)
            rows.append({"sharding": way, "stage": STAGE_OF[way], "part": part, "measured": held,
                         "estimate": estimate[part], "error": held / estimate[part] - 1})
    return rows


# The ZeRO paper's Figure 1: a 7.5B-parameter model, 64 devices, mixed-precision Adam (K = 12).
PAPER_FIGURE_1 = {"parameters": 7.5e9, "devices": 64, "gb": {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.9}}


def paper_figure_1() -> dict:
    """``zero_bytes`` on the paper's worked example: {stage: (ours in GB, the paper's GB)}."""
    p = PAPER_FIGURE_1
    return {stage: (zero_bytes(p["parameters"], p["devices"], stage)["total"] / 1e9, gb)
            for stage, gb in p["gb"].items()}


# --- configs a learner takes to a multi-GPU machine ---

def configs(gpus: int = 8, mixed_precision: str = "bf16", layer: str = "LlamaDecoderLayer") -> dict:
    """Launch configs for ``gpus`` GPUs on one machine: accelerate (DDP, FSDP) and DeepSpeed (ZeRO-2,
    ZeRO-3; "auto" values are filled in by the Trainer from its own arguments). {file name: content}."""
    if mixed_precision not in ("no", "fp16", "bf16"):
        raise ValueError(f"Unknown mixed precision {mixed_precision!r}: choose 'no', 'fp16' or 'bf16'.")
    machine = {"compute_environment": "LOCAL_MACHINE", "num_machines": 1, "machine_rank": 0, "num_processes": gpus,
               "gpu_ids": "all", "mixed_precision": mixed_precision, "use_cpu": False, "rdzv_backend": "static",
               "same_network": True, "main_training_function": "main", "downcast_bf16": "no"}
    fsdp = {"fsdp_version": 2, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_transformer_layer_cls_to_wrap": layer, "fsdp_reshard_after_forward": True,
            "fsdp_state_dict_type": "SHARDED_STATE_DICT", "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_offload_params": False, "fsdp_activation_checkpointing": False}
    auto = {"train_micro_batch_size_per_gpu": "auto", "train_batch_size": "auto",
            "gradient_accumulation_steps": "auto", "gradient_clipping": "auto",
            "bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"}}
    zero2 = {"stage": 2, "overlap_comm": True, "contiguous_gradients": True, "reduce_bucket_size": "auto",
             "allgather_bucket_size": 5e8}
    zero3 = {"stage": 3, "overlap_comm": True, "contiguous_gradients": True, "reduce_bucket_size": "auto",
             "stage3_prefetch_bucket_size": "auto", "stage3_param_persistence_threshold": "auto",
             "stage3_gather_16bit_weights_on_model_save": True}
    return {"accelerate_ddp.yaml": machine | {"distributed_type": "MULTI_GPU"},
            "accelerate_fsdp.yaml": machine | {"distributed_type": "FSDP", "fsdp_config": fsdp},
            "deepspeed_zero2.json": auto | {"zero_optimization": zero2},
            "deepspeed_zero3.json": auto | {"zero_optimization": zero3}}


def write_configs(folder: str | Path, **kwargs) -> list[Path]:
    """Write ``configs(**kwargs)`` into ``folder`` (YAML for accelerate, JSON for DeepSpeed)."""
    import yaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in configs(**kwargs).items():
        text = yaml.safe_dump(content, sort_keys=False) if name.endswith(".yaml") else json.dumps(content, indent=2)
        (folder / name).write_text(text + ("" if text.endswith("\n") else "\n"))
        paths.append(folder / name)
    return paths


def load_config(path: str | Path) -> dict:
    """Load a config the way its tool does (accelerate's config loader; accelerate's DeepSpeed and FSDP
    plugins), so a broken or misspelt one raises here: {"kind", "zero_stage", "processes"}."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin

    path = Path(path)
    if path.suffix == ".json":
        plugin = DeepSpeedPlugin(hf_ds_config=str(path))
        return {"kind": "deepspeed", "zero_stage": plugin.zero_stage, "processes": None}
    cluster = load_config_from_file(str(path))
    kind = str(cluster.distributed_type.value)
    if kind == "FSDP":
        options = {k.removeprefix("fsdp_"): v for k, v in cluster.fsdp_config.items()}
        options["transformer_cls_names_to_wrap"] = options.pop("transformer_layer_cls_to_wrap")
        options["cpu_offload"] = options.pop("offload_params")
        options["fsdp_version"] = options.pop("version")
        FullyShardedDataParallelPlugin(**options)
    return {"kind": kind, "zero_stage": 3 if kind == "FSDP" else 0, "processes": cluster.num_processes}


# --- launching ---

def command(script: str, out: str | Path, processes: int = 2, cpu_flag: bool = False, **options) -> tuple:
    """(argv, environment) that run ``python -m labkit.topics.scaling SCRIPT --out OUT`` under
    ``accelerate launch`` in ``processes`` processes (one process: plain ``python``, the same script
    without a launcher). Several processes need ``--multi_gpu`` even on a
    CPU-only machine (they talk over gloo); ``cpu_flag=True`` passes ``--cpu`` instead, which silently
    starts ONE process (the trap notebook 12 shows). Below two GPUs every run goes on the CPU, so that
    runs compared with each other compute on the same device (two processes cannot share one GPU)."""
    import torch

    if not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be a whole number >= 1, got {processes!r}.")
    script_argv = ["-m", "labkit.topics.scaling", script, "--out", str(out)]
    if processes == 1 and not cpu_flag:  # one process needs no launcher: plain python (one process less to hold)
        argv = [sys.executable, *script_argv]
    else:
        flags = ["--cpu"] if cpu_flag else ["--multi_gpu"]
        argv = [sys.executable, "-m", "accelerate.commands.launch", *flags, "--num_processes", str(processes),
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *script_argv]
    argv += [arg for key, value in options.items() for arg in (f"--{key}", str(value))]
    # One core per process. MALLOC_MMAP_THRESHOLD_ (glibc): each block of 64 KiB or more (a tensor) gets
    # its own mapping, handed back to the system when freed; by default glibc raises this threshold as
    # blocks are freed and keeps freed tensors' memory in the process (~35 MiB more per process here).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": str(64 * 1024)}
    if torch.cuda.device_count() < max(processes, 2):
        env["CUDA_VISIBLE_DEVICES"] = ""
    return argv, env


def launch(*jobs: dict, together: bool = False) -> list[dict]:
    """Run each job (the keyword arguments of ``command``) as its own launch, one after the other (or
    all at once with ``together``: faster, but every launch's processes are in memory at the same
    time). Returns [{"seconds", "stderr"}] in the jobs' order; a launch that fails raises one sentence
    naming it, with the last error line its processes printed."""
    import tempfile
    import time

    with tempfile.TemporaryDirectory() as logs:
        def start(i, job):
            argv, env = command(**job)
            err = open(f"{logs}/{i}.err", "w+")
            return job, err, time.perf_counter(), subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                                                   stderr=err, text=True)

        running = [start(i, job) for i, job in enumerate(jobs)] if together else []
        out = []
        for i, job in enumerate(jobs):
            job, err, begun, proc = running[i] if together else start(i, job)
            code = proc.wait()
            seconds = time.perf_counter() - begun
            err.seek(0)
            text = err.read()
            err.close()
            if code != 0:
                launcher = ("CalledProcessError", "ChildFailedError", "elastic")  # the launcher's own report
                lines = [line for line in text.splitlines() if ("Error" in line or "error:" in line)
                         and not any(word in line for word in launcher)] or text.splitlines() or [""]
                n = job.get("processes", 2)
                raise RuntimeError(f"The launch of {job['script']!r} ({n} process{'es' if n != 1 else ''}) failed "
                                   f"(exit code {code}): {lines[-1].strip()}")
            out.append({"seconds": seconds, "stderr": text})
    return out


# Installed, never used by the launched scripts, and imported by transformers whenever installed: PEFT
# (and through it bitsandbytes, which pulls in torch's compiler stack), datasets (with pyarrow and pandas)
# and SciPy (for object-detection losses). Each launched process holds about 0.13 GB less without them:
# with two of them, their launcher, the notebook's kernel and papermill in memory at once, that is what
# keeps notebook 12 within 1.5 GB (Binder gives 2 GB).
UNUSED_IN_LAUNCHED = ("peft", "bitsandbytes", "datasets", "scipy")


def hide_unused_packages(names=UNUSED_IN_LAUNCHED) -> None:
    """Make ``names`` look absent to this process (``importlib.util.find_spec`` returns None, importing
    raises ImportError), so libraries that import them when installed skip them. For the launched
    scripts only, before transformers is imported; a package already imported is left alone."""
    for name in names:
        sys.modules.setdefault(name, None)


def main(argv=None):
    hide_unused_packages()  # first: before anything imports transformers
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="script", required=True)
    train_cmd = sub.add_parser("train", help="one process of a Trainer run on the record task")
    for name, kind, default in (("steps", int, 8), ("batch", int, 4), ("accum", int, 1), ("lr", float, 1e-3),
                                ("examples", int, 64), ("seed", int, 0)):
        train_cmd.add_argument(f"--{name}", type=kind, default=default)
    shard_cmd = sub.add_parser("shard", help="bytes held per process: DDP, ZeRO-1, FSDP")
    shard_cmd.add_argument("--seed", type=int, default=0)
    for p in (train_cmd, shard_cmd):
        p.add_argument("--out", required=True)
    ns = parser.parse_args(argv)
    from labkit import quiet

    quiet()
    if ns.script == "train":
        train(ns.out, steps=ns.steps, batch=ns.batch, accum=ns.accum, lr=ns.lr, examples=ns.examples, seed=ns.seed)
    else:
        shard(ns.out, seed=ns.seed)


if __name__ == "__main__":
    main()

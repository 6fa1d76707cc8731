"""The GPU check: one command that proves the CUDA path on a machine with a GPU, in under 10 minutes.

``python -m bench.gpu`` (``nox -s gpu`` where pip reaches PyPI) runs three parts and prints each:

1. **Equivalence.** The K fold-models trained stacked on CUDA (``fit_stacked``: one ``baddbmm`` per
   layer, the fused optimizer kernels torch has for CUDA) against K separate textbook trainings on
   CUDA (nn.Sequential, autograd, ``torch.optim``, tests/training/reference.py) with the same
   initial weights, row order and dropout masks: every optimizer, dropout, input dropout, label
   smoothing, weight decay, both schedules. Tolerance: rtol 1e-3, atol 1e-4 on every weight, as
   the CPU tests hold it (float32 summation order differs between a batched and a plain product;
   RMSprop's division by a running root mean square amplifies it).
2. **The default study** (``hpsearch study --trials 50 --folds 5``, mnist-5k) with ``--device cuda``:
   its wall time, trials and best CV accuracy beside the CPU figure of our 2-core machine.
3. **studies/fashion-mnist-quick.toml** with ``--device cuda`` (``--timeout`` shortened to fit the
   10 minutes), then its final test: time and test accuracy.

Nothing here downloads: on a machine without a network (our lent H200), run ``python -m bench.gpu
prepare`` first where pip works. It puts into ``.gpu/`` (git-ignored) the wheels the GPU
machine's Python lacks and the Fashion-MNIST IDX files; then, there::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/wheels/*.whl
    PYTHONPATH=/tmp/site:. python3 -m bench.gpu --data .gpu/fashion-mnist --out $OUT

``--device cpu --quick`` runs the same code on the CPU with small sizes: a smoke test of the check
itself, not a GPU figure. Results go to ``gpu.json`` in ``--out`` (default bench/).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from hpsearch.config import TrainConfig
from hpsearch.training import fit_stacked, steps_per_epoch
from tests.training.reference import textbook_fit

HERE = Path(__file__).parent
ROOT = HERE.parent
# The CPU side of part 2: the default study (median pruner, seed 0) on our quiet 2-core AMD EPYC,
# torch 2.13 CPU, `python -m bench.race --seeds 0 --pruners median` (docs/tutorial.md, "The main job")
CPU_DEFAULT_STUDY = {"seconds": 249.0, "best_accuracy": 0.9525, "machine": "2-core AMD EPYC, torch 2.13 CPU"}
# What the GPU machine's python lacks (Python 3.12; it has torch, scikit-learn, pandas, rich, ...)
WHEELS = (
    *("optuna==5.0.0", "alembic", "Mako", "SQLAlchemy", "greenlet", "colorlog", "mlxtend"),
    *("typer==0.29.2", "pydantic==2.14.4", "pydantic-core==2.50.5", "annotated-types", "typing-inspection"),
    "typing-extensions>=4.16",  # pydantic's floor; the machine's may be older
)
_CASES: dict[str, dict[str, Any]] = {
    "sgd, momentum, weight decay": {"optimizer": "sgd", "lr": 0.05, "weight_decay": 1e-3},
    "adam, cosine": {"optimizer": "adam", "lr": 2e-3, "lr_schedule": "cosine"},
    "adagrad, dropout, balanced class weights": {"optimizer": "adagrad", "lr": 0.05, "dropout": 0.3,
                                                 "class_weight": "balanced"},
    "rmsprop, weight decay": {"optimizer": "rmsprop", "lr": 1e-3, "weight_decay": 1e-4},
    "adam, input dropout, label smoothing": {"optimizer": "adam", "lr": 2e-3, "input_dropout": 0.2,
                                             "label_smoothing": 0.1, "dropout": 0.2},
    "sgd, cosine, all regularisers": {"optimizer": "sgd", "lr": 0.05, "lr_schedule": "cosine", "dropout": 0.2,
                                      "input_dropout": 0.1, "label_smoothing": 0.1, "weight_decay": 1e-4},
}  # fmt: skip


def equivalence(device: str, quick: bool) -> list[dict[str, Any]]:
    """Part 1: stacked fold-models on ``device`` against separate textbook trainings there."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    k, rows = 4, 1440 if not quick else 480  # equal folds, a multiple of the batch: no padded batch
    x = torch.tensor(digits.data[:rows] / 16.0, dtype=torch.float32, device=device)
    y = torch.tensor(digits.target[:rows], device=device)
    folds = [torch.arange(i, rows, k, device=device) for i in range(k)]
    results = []
    for name, settings in _CASES.items():
        cfg = TrainConfig(depth=2, width=64, batch_size=45, epochs=3, seed=5, device=device, **settings)
        stacked = fit_stacked(x, y, folds, 10, cfg)
        worst = 0.0
        for i, rows_i in enumerate(folds):
            steps = steps_per_epoch(len(rows_i), cfg.batch_size)
            plain = textbook_fit(x[rows_i], y[rows_i], 10, cfg, fold=i, steps=steps)
            together = stacked.member(i)
            plain_params = list(plain.parameters())
            for a, b in zip(together.parameters(), plain_params, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
                worst = max(worst, float((a - b).detach().abs().max()))
        results.append({"case": name, "folds": k, "max_abs_difference": worst})
        print(f"  {name:<40} {k} folds stacked = {k} separate trainings (max |diff| {worst:.2e})", flush=True)
    return results


def _study(args: list[str], db: Path) -> dict[str, Any]:
    import optuna

    command = [sys.executable, "-m", "hpsearch", "study", *args, "--storage", f"sqlite:///{db}", "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    study = optuna.load_study(study_name=optuna.get_all_study_names(f"sqlite:///{db}")[0], storage=f"sqlite:///{db}")
    states = [t.state.name for t in study.trials]
    return {
        "command": "hpsearch study " + " ".join(args),
        "seconds": round(seconds, 1),
        "trials": len(states),
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "best_accuracy": study.best_value,
    }


def default_study(device: str, quick: bool, folder: Path) -> dict[str, Any]:
    """Part 2: the mission's command on ``device``."""
    args = ["--trials", "50", "--folds", "5", "--device", device]
    if quick:
        args = ["--trials", "4", "--folds", "3", "--epochs", "1", "--dataset", "digits", "--device", device]
    result = _study(args, folder / "default.db")
    print(
        f"  {result['command']}: {result['seconds']} s, {result['trials']} trials ({result['complete']} complete), "
        f"best CV accuracy {result['best_accuracy']:.4f}; CPU ({CPU_DEFAULT_STUDY['machine']}): "
        f"{CPU_DEFAULT_STUDY['seconds']:.0f} s, best {CPU_DEFAULT_STUDY['best_accuracy']:.4f}",
        flush=True,
    )
    return result | {"cpu": CPU_DEFAULT_STUDY}


def fashion_quick(device: str, data: Path | None, timeout: int, folder: Path, quick: bool) -> dict[str, Any]:
    """Part 3: the quarter-hour Fashion-MNIST definition on ``device``, then its final test."""
    args = ["--config", str(ROOT / "studies" / "fashion-mnist-quick.toml"), "--device", device]
    args += ["--trials", "200", "--timeout", str(timeout), *(["--data", str(data)] if data else [])]
    if quick:  # the same definition on digits, 2 epochs: the commands run, the figure means nothing
        args = [*args[:4], "--dataset", "digits", "--epochs", "2", "--trials", "3"]
        data = None
    db = folder / "quick.db"
    result = _study(args, db)
    start = time.perf_counter()
    out = folder / "final"
    command = [sys.executable, "-m", "hpsearch", "final-test", "best", "--storage", f"sqlite:///{db}"]
    subprocess.run([*command, "--device", device, "--out", str(out), *(["--data", str(data)] if data else [])],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    doc = json.loads((out / "final_test.json").read_text())
    result |= {
        "final_test_seconds": round(time.perf_counter() - start, 1),
        "test_accuracy": doc["metrics"]["test"]["accuracy"],
        "test_accuracy_ci": doc["metrics"]["test_ci"]["accuracy"],
    }
    total = result["seconds"] + result["final_test_seconds"]
    low, high = result["test_accuracy_ci"]
    print(
        f"  {result['command']}: {result['seconds']} s, {result['trials']} trials ({result['complete']} complete); "
        f"final test {result['final_test_seconds']} s, test accuracy {result['test_accuracy']:.4f} "
        f"({low:.4f}-{high:.4f}); {total:.0f} s in all",
        flush=True,
    )
    return result


def prepare(target: Path) -> None:
    """Here, where pip reaches PyPI: the wheels and the Fashion-MNIST files the GPU machine lacks."""
    wheels = target / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 24, 27, 28)] + ["--platform=manylinux2014_x86_64"]
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12"]
    subprocess.run([*pip, "--implementation", "cp", *platforms, "-d", str(wheels), *WHEELS], check=True)
    fashion = target / "fashion-mnist"
    fashion.mkdir(exist_ok=True)
    for f in Path("/usr/share/datasets/fashion-mnist").glob("*-ubyte.gz"):
        shutil.copy(f, fashion / f.name)
    print(f"ready in {target}: {len(list(wheels.glob('*.whl')))} wheels, {len(list(fashion.iterdir()))} IDX files")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=("check", "prepare"), default="check")
    parser.add_argument("--device", default="cuda", help="cuda; cpu with --quick to smoke-test this script")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the check, not a figure")
    parser.add_argument("--data", type=Path, help="a folder of Fashion-MNIST IDX files (default: Debian's)")
    parser.add_argument("--timeout", type=int, default=240, help="seconds of the Fashion-MNIST study")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for gpu.json")
    args = parser.parse_args(argv)
    if args.what == "prepare":
        prepare(ROOT / ".gpu")
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: torch sees no GPU here; run this on a machine with CUDA (or --device cpu --quick)")
    where = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"hpsearch GPU check on {where}, torch {torch.__version__} (CUDA {torch.version.cuda})", flush=True)
    report: dict[str, Any] = {"device": where, "torch": torch.__version__, "cuda": torch.version.cuda}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("1. stacked fold-models against separate textbook trainings", flush=True)
        report["equivalence"] = equivalence(args.device, args.quick)
        print("2. the default study", flush=True)
        report["default_study"] = default_study(args.device, args.quick, folder)
        print("3. studies/fashion-mnist-quick.toml", flush=True)
        report["fashion_mnist_quick"] = fashion_quick(args.device, args.data, args.timeout, folder, args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

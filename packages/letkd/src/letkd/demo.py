"""End-to-end letKD demo on the embedded digits (CIFAR-100 layout), run through the real sacred entry script.

In `--output-dir` it writes the digits as ``data/cifar-100-python``, then runs `letkd.main_classification` exactly as
``python main_classification.py with config=... data_dir=data`` would, from that folder (the configs read
``./saved_models`` and ``./experiments`` relative to it):

1. trains the digits teacher (``CIFAR100.demo.RN14_train``, a CIFAR ResNet-14) and exports its last epoch in the
   RepDistiller teacher format to ``./saved_models/demo_resnet14_digits/ckpt_epoch_8.pth``, the file the demo teacher
   config ``CIFAR100.demo.RN14`` names (as the paper configs name the downloaded teachers);
2. ``kmeans=256`` and ``LDA=5`` on that teacher config (penultimate and intermediate targets);
3. trains the letKD-1 and letKD-2 ResNet-8 students (``CIFAR100.demo.RN14_RN8.letKD-{1,2}``);
4. evaluates teacher and students (``evaluate=True``: the best epoch, chosen on the test set as in the original)
   and prints the table with the last epoch's accuracy beside it.

Defaults finish in a few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from kdrepro_shared.data import write_digits_cifar100
from kdrepro_shared.errors import KdReproError, exit_on_user_error
from letkd import main_classification
from letkd.configs import load_config
from letkd.configs.demo_blocks import DEMO_KMEANS, DEMO_TEACHER_FILE
from letkd.distillation import architectures
from letkd.distillation.algorithms.algorithm import load_checkpoint_file
from letkd.distillation.architectures.tools import split_network

TEACHER_TRAIN = "CIFAR100.demo.RN14_train"
TEACHER = "CIFAR100.demo.RN14"
STUDENTS = {"letKD-1": "CIFAR100.demo.RN14_RN8.letKD-1", "letKD-2": "CIFAR100.demo.RN14_RN8.letKD-2"}
LDA_STAGE = 5


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of the demo."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("output/letkd_demo"))
    parser.add_argument("--seed", type=int, default=0, help="sacred seed of every run")
    parser.add_argument("--num-workers", type=int, default=0, help="data loader workers")
    return parser.parse_args(argv)


def run_entry(config: str, seed: int, num_workers: int, *updates: str) -> dict[str, Any]:
    """One ``main_classification.py with config=<config> ...`` run; returns the run's result summary."""
    argv = ["main_classification.py", "with", f"config={config}", "data_dir=data", f"num_workers={num_workers}"]
    argv += [f"seed={seed}", "disp_step=5", *updates]
    print(f"\n$ python {' '.join(argv)}", flush=True)
    run = main_classification.main(argv)
    if run is None or run.result is None:
        raise KdReproError(f"the run of {config} returned no result (see the log above)")
    return run.result


def export_teacher(train_config: str, teacher_config: str) -> Path:
    """Write the trained teacher's last epoch as a RepDistiller teacher file at the teacher config's `pretrained`.

    The split feature extractor / classifier share their modules with the full model, so loading their checkpoints
    into the split parts fills the full model, whose state_dict has the RepDistiller key names.
    """
    trained = load_config(train_config)
    student = trained["networks"]["student_net"]
    exp_dir = Path("experiments", *train_config.split("."))
    epoch = trained["max_num_epochs"]
    model = architectures.factory(architecture_name=student["def_file"], opt=student["opt"])
    feature_extractor, classifier = split_network(
        model, student["opt"]["extract_from"], student["opt"]["extract_after_relu"]
    )
    feature_extractor.load_state_dict(load_checkpoint_file(exp_dir / f"feature_extractor_net_epoch{epoch}")["network"])
    classifier.load_state_dict(load_checkpoint_file(exp_dir / f"classifier_net_epoch{epoch}")["network"])
    target = Path(load_config(teacher_config)["networks"]["student_net"]["pretrained"])
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": epoch, "model": model.state_dict(), "accuracy": None, "optimizer": {}}, target)
    print(f"==> exported the trained teacher to {target}")
    return target


def top1(result: dict[str, Any]) -> float:
    """Test top-1 (%) of an evaluate run's result."""
    return float(result["results"]["AccuracyTop1"])


def format_table(rows: list[tuple[str, str, float, float | None, float]]) -> str:
    """Markdown table of (model, config, best-epoch top-1, last-epoch top-1, seconds)."""
    lines = [
        "| model | config | test top-1 (best epoch, evaluate=True) | test top-1 (last epoch) | time (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for model, config, best, last, seconds in rows:
        last_cell = "-" if last is None else f"{last:.2f}"
        lines.append(f"| {model} | `{config}` | {best:.2f} | {last_cell} | {seconds:.0f} |")
    return "\n".join(lines)


def run_demo(args: argparse.Namespace) -> list[tuple[str, str, float, float | None, float]]:
    """The whole chain in `args.output_dir`; returns the table rows."""
    out = args.output_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("experiments", Path(DEMO_TEACHER_FILE).parent):
        shutil.rmtree(out / stale, ignore_errors=True)
    write_digits_cifar100(out / "data")
    rows = []
    with contextlib.chdir(out):
        start = time.time()
        teacher_train = run_entry(TEACHER_TRAIN, args.seed, args.num_workers)
        export_teacher(TEACHER_TRAIN, TEACHER)
        run_entry(TEACHER, args.seed, args.num_workers, f"kmeans={DEMO_KMEANS}")
        run_entry(TEACHER, args.seed, args.num_workers, f"LDA={LDA_STAGE}")
        teacher_eval = run_entry(TEACHER, args.seed, args.num_workers, "evaluate=True")
        last_teacher = float(teacher_train["last"]["AccuracyTop1"])
        rows.append(
            ("teacher ResNet-14 (last epoch exported)", TEACHER, top1(teacher_eval), last_teacher, time.time() - start)
        )
        for name, config in STUDENTS.items():
            start = time.time()
            trained = run_entry(config, args.seed, args.num_workers)
            evaluated = run_entry(config, args.seed, args.num_workers, "evaluate=True")
            rows.append(
                (
                    f"{name} ResNet-8",
                    config,
                    top1(evaluated),
                    float(trained["last"]["AccuracyTop1"]),
                    time.time() - start,
                )
            )
    return rows


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Run the demo and print the accuracy table."""
    args = parse_args(argv)
    start = time.time()
    rows = run_demo(args)
    print(f"\nletKD demo on the digits ({args.output_dir}), {time.time() - start:.0f} s in all:\n")
    print(format_table(rows))


if __name__ == "__main__":
    main()

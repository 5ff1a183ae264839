"""End-to-end demo on the embedded digits: a teacher, a vanilla student, then KD, CRD, ICD and RRD students.

It writes scikit-learn's digits in the CIFAR-100 pickle layout under `<output-dir>/data` and runs the package's real
entry points (`train_teacher.main`, `train_student.main`) from `<output-dir>`, because the seed's scripts read
`./data` and write `./save` relative to the working directory. The teacher's periodic checkpoint is copied to
`save/models/<arch>_vanilla/` (the layout `--path_t` parses, as after `scripts/fetch_pretrained_teachers.sh`). Every
student uses the loss weights of the seed's `scripts/run_cifar_distill.sh`. The printed table gives each run's
last-epoch top-1 (what the paper reports) and its best epoch's top-1, read back from the checkpoints it wrote.

Defaults aim at under five minutes on two CPU cores: resnet14 (4 epochs) → resnet8 (3 epochs), batch 64 and
`--nce_k 1024` (the digits train set has 1,500 images, so CRD's memory bank needs K < 1,500 and RRD's queue needs K
divisible by the batch size).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from distillers_icd_rrd import train_student, train_teacher
from distillers_icd_rrd.script_utils import MODEL_NAMES
from kdrepro_shared.checkpoints import load
from kdrepro_shared.data import write_digits_cifar100
from kdrepro_shared.errors import KdReproError, exit_on_user_error
from kdrepro_shared.seed import seed_everything

# `-r/-a/-b` of every method in the seed's scripts/run_cifar_distill.sh (RRD: the README's, as ICD's).
METHOD_WEIGHTS = {
    "kd": ("-r", "0.1", "-a", "0.9", "-b", "0"),
    "hint": ("-a", "0", "-b", "100"),
    "attention": ("-a", "0", "-b", "1000"),
    "similarity": ("-a", "0", "-b", "3000"),
    "correlation": ("-a", "0", "-b", "0.02"),
    "vid": ("-a", "0", "-b", "1"),
    "rkd": ("-a", "0", "-b", "1"),
    "pkt": ("-a", "0", "-b", "30000"),
    "abound": ("-a", "0", "-b", "1"),
    "factor": ("-a", "0", "-b", "200"),
    "fsp": ("-a", "0", "-b", "50"),
    "nst": ("-a", "0", "-b", "50"),
    "crd": ("-a", "0", "-b", "0.8"),
    "icd": ("-a", "0", "-b", "1"),
    "rrd": ("-a", "0", "-b", "1"),
}
DEFAULT_METHODS = ("kd", "crd", "icd", "rrd")
SEED_DECAY_EPOCHS = (150, 180, 210)
SEED_EPOCHS = 240


@dataclass(frozen=True)
class Result:
    """One row of the demo's table."""

    run: str
    arch: str
    flags: str
    last_acc: float
    best_acc: float
    seconds: float


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; the defaults run in a few minutes on two CPU cores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("output/distillers_icd_rrd_demo"))
    parser.add_argument("--teacher", default="resnet14", choices=MODEL_NAMES)
    parser.add_argument("--student", default="resnet8", choices=MODEL_NAMES)
    parser.add_argument("--teacher-epochs", type=int, default=4)
    parser.add_argument("--student-epochs", type=int, default=3)
    parser.add_argument("--init-epochs", type=int, default=1, help="init stage of abound/factor/fsp")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--nce-k", type=int, default=1024, help="CRD negatives / RRD queue (< 1500, batch multiple)")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=list(METHOD_WEIGHTS))
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def scaled_decay_epochs(epochs: int) -> str:
    """The seed's lr milestones 150,180,210 of 240 epochs, scaled to `epochs` (e.g. 8 → '5,6,7')."""
    return ",".join(str(max(1, round(epochs * m / SEED_EPOCHS))) for m in SEED_DECAY_EPOCHS)


def schedule_flags(epochs: int, batch_size: int) -> list[str]:
    """Flags shared by every run: short schedule, no workers, quiet printing, one periodic checkpoint at the end."""
    return [
        "--epochs",
        str(epochs),
        "--lr_decay_epochs",
        scaled_decay_epochs(epochs),
        "--save_freq",
        str(epochs),
        "--batch_size",
        str(batch_size),
        "--num_workers",
        "0",
        "--print_freq",
        "1000",
    ]


def teacher_argv(arch: str, epochs: int, batch_size: int) -> list[str]:
    """`train_teacher.py --model ARCH` with the demo's schedule (also how the seed trains vanilla students)."""
    return ["--model", arch, *schedule_flags(epochs, batch_size)]


def student_argv(method: str, path_t: str, args: argparse.Namespace) -> list[str]:
    """`train_student.py --distill METHOD` with the run script's weights and the demo's schedule."""
    return [
        "--path_t",
        path_t,
        "--distill",
        method,
        "--model_s",
        args.student,
        *METHOD_WEIGHTS[method],
        "--trial",
        "demo",
        "--nce_k",
        str(args.nce_k),
        "--init_epochs",
        str(args.init_epochs),
        *schedule_flags(args.student_epochs, args.batch_size),
    ]


def accuracies(folder: Path, arch: str, epochs: int) -> tuple[float, float]:
    """(last-epoch, best) top-1 of a finished run, from `ckpt_epoch_<epochs>.pth` and `<arch>_best.pth`."""
    last = load(folder / f"ckpt_epoch_{epochs}.pth")["accuracy"]
    best_file = folder / f"{arch}_best.pth"
    best = load(best_file)["best_acc"] if best_file.is_file() else torch.zeros(1)
    return float(last), float(best)


def run_quietly(entry: Callable[[list[str]], None], argv: list[str], log_file: Path) -> float:
    """Run an entry point with its stdout appended to `log_file`; return the wall time in seconds."""
    start = time.perf_counter()
    with log_file.open("a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        print(f"\n$ {entry.__module__} {' '.join(argv)}")
        try:
            entry(argv)
        except SystemExit as err:
            raise KdReproError(
                f"{entry.__module__} {' '.join(argv)} failed (exit {err.code}); see {log_file}"
            ) from None
    return time.perf_counter() - start


def train_teachers(args: argparse.Namespace, log_file: Path) -> tuple[list[Result], str]:
    """Train the teacher and the vanilla student (as long as the distilled ones) with train_teacher.

    The teacher is then published as `save/models/<arch>_vanilla/`, where `--path_t` finds it.
    """
    rows = []
    runs = (("Teacher", args.teacher, args.teacher_epochs), ("Student (vanilla)", args.student, args.student_epochs))
    for label, arch, epochs in runs:
        seed_everything(args.seed)
        seconds = run_quietly(train_teacher.main, teacher_argv(arch, epochs, args.batch_size), log_file)
        folder = Path("save/teacher/models") / f"cifar100_{arch}_trial_0"
        last, best = accuracies(folder, arch, epochs)
        rows.append(Result(label, arch, "CE", last, best, seconds))
    # train_teacher's folder name (cifar100_<arch>_trial_0) does not parse as a teacher arch: copy it the way
    # fetch_pretrained_teachers.sh lays the released teachers out.
    path_t = Path("save/models") / f"{args.teacher}_vanilla" / f"ckpt_epoch_{args.teacher_epochs}.pth"
    path_t.parent.mkdir(parents=True, exist_ok=True)
    teacher_folder = Path("save/teacher/models") / f"cifar100_{args.teacher}_trial_0"
    shutil.copyfile(teacher_folder / f"ckpt_epoch_{args.teacher_epochs}.pth", path_t)
    return rows, f"./{path_t.as_posix()}"


def distill_students(args: argparse.Namespace, path_t: str, log_file: Path) -> list[Result]:
    """One train_student run per method; each row reads the run's own checkpoints."""
    rows = []
    for method in args.methods:
        seed_everything(args.seed)
        argv = student_argv(method, path_t, args)
        seconds = run_quietly(train_student.main, argv, log_file)
        opt = train_student.parse_option(argv)  # the same run name and folders the run used
        last, best = accuracies(Path(opt.save_folder), args.student, args.student_epochs)
        rows.append(Result(method.upper(), args.student, " ".join(METHOD_WEIGHTS[method]), last, best, seconds))
    return rows


def format_table(rows: Sequence[Result]) -> str:
    """The accuracy table in markdown: run, arch, loss weights, last and best top-1, wall time."""
    lines = [
        "| run | model | loss weights | last-epoch top-1 (%) | best top-1 (%) | time (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.run} | {r.arch} | {r.flags} | {r.last_acc:.2f} | {r.best_acc:.2f} | {r.seconds:.0f} |" for r in rows
    ]
    return "\n".join(lines)


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Write the digits, train teacher and students through the real entry points, print the table."""
    args = parse_args(argv)
    work = args.output_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "save", ignore_errors=True)  # every row must come from this run's checkpoints
    write_digits_cifar100(work / "data")
    log_file = work / "demo.log"
    log_file.write_text("", encoding="utf-8")
    print(f"Digits (1500 train / 297 test, 10 classes) in {work / 'data'}; training logs in {log_file}")
    with contextlib.chdir(work):
        rows, path_t = train_teachers(args, log_file)
        rows += distill_students(args, path_t, log_file)
    print(
        f"\n{args.teacher} → {args.student} on digits (CIFAR-100 layout): teacher {args.teacher_epochs} epochs, "
        f"students {args.student_epochs} epochs, batch {args.batch_size}, --nce_k {args.nce_k}\n"
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()

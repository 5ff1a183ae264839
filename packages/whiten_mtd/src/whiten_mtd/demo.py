"""End-to-end demo on the embedded digits as landmarks: two teachers, their PCA-whitening, a distilled student, mAP.

Data. scikit-learn's digits (`kdrepro_shared.data.digits_arrays`: 1500 train / 297 test images, 32×32 grey RGB).
A *landmark* is a digit written in one style: the train images of every digit are cut into `--styles` groups by ink
mass (quantiles of the summed stroke intensity, thin to bold writing), 40 landmarks of about 37 images, written
with `write_gldv2` in the real GLDv2 layout (`train/a/b/c/<id>.jpg`, `meta/train_clean.csv`,
`meta/train_clean_ids.txt`). The test images become a revisitop-format `roxford5k` (`gnd_roxford5k.pkl` + `jpg/`):
`--queries-per-digit` queries per digit, the rest is the database; for a query, images of its digit in its own style
group are `easy`, in an adjacent group `junk`, in a farther group `hard` (Medium = the same digit, Hard = the same
digit written in a clearly different style). The group bounds come from the train split.

Teachers. The teacher registry builds fixed architectures and loads the authors' files strictly, so a teacher name
cannot be made small: GeM, AP-GeM, SOLAR, DELG and DOLG are ResNet-101s (DOLG also carries an 81,313-class ArcFace),
`mocov3` and `barlowtwins` are ResNet-50s (23.5 M parameters), the two smallest;
the demo uses those two. It trains one ResNet-50 from scratch as those factories build it (GeM p = `-p`, L2) with SGD,
a one-cycle schedule and a normalised-softmax classifier on the digit (`mocov3`), then fine-tunes it on the landmark
(digit × style, 40 classes, a tenth of the learning rate) for `barlowtwins`, so the two agree on digits and differ on
style. Their trunks are saved in the original
layouts (`mocov3_1000ep.pth.tar` = {"state_dict": module.base_encoder.*}, `barlowtwins_full.pth.tar` = {"model":
module.backbone.*}), which the package's loaders then read strictly like the authors' files.

Pipeline. Every step after that is the real entry script, run as a subprocess from `<output-dir>` (output in
`demo.log`): `gld_pca_learn.py` per teacher on all train images (`--imsize` crops, p 3, `--embed_dim` = `--pca-dim`,
16), dumped to the file name the PCA loader expects for that teacher
(`weights/pca_weights/<teacher>_pca_512d_svd_224x224_p1.pt`: fixed for these two teachers, whatever its width);
`gld_distill.py` (ResNet-18 student, maxmin fusion, τ 0.05, Adam at `--lr`, `--no_imagenet_init` because the demo runs
offline); `oxford_paris_eval.py` (single-scale unless `--multiscale`, p 3) for each teacher with `--pca` (raw too with
`--raw-teachers`), the distilled student, and for reference a student at a seeded random initialisation (gld_distill
and gld_pca_learn have no seed flag, as in the original). The table gives mAP and mP@1,5,10 for Medium and Hard.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image
from torch import nn
from torchvision.models.resnet import Bottleneck
from tqdm import tqdm

from kdrepro_shared.checkpoints import save
from kdrepro_shared.data import digits_arrays
from kdrepro_shared.device import resolve_device
from kdrepro_shared.errors import KdReproError, exit_on_user_error
from kdrepro_shared.seed import seed_everything
from whiten_mtd.datasets.fake_gld import write_gldv2
from whiten_mtd.datasets.fake_revisitop import write_revisitop
from whiten_mtd.models.distill_model import STUDENT_PREFIX, build_student
from whiten_mtd.models.gem_pooling import GeneralizedMeanPooling
from whiten_mtd.models.pca_layer import pca_path
from whiten_mtd.models.resnet import resnet50
from whiten_mtd.models.teachers import TEACHER_FILES

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # packages/whiten_mtd: the original's script folder
DATASET = "roxford5k"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLASSIFIER_SCALE = 16.0  # logit scale of the teachers' normalised-softmax classifier
TEACHERS = ("mocov3", "barlowtwins")
TEACHER_TASKS = {"mocov3": "digit", "barlowtwins": "digit → landmark"}  # what each demo teacher learns to classify
# Key layout of each teacher file: (top-level entry, prefix of the trunk keys), as the authors' files have them.
TEACHER_LAYOUTS = {"mocov3": ("state_dict", "module.base_encoder."), "barlowtwins": ("model", "module.backbone.")}
TABLE_HEADER = (
    "| model | descriptor | M mAP | H mAP | M mP@1 | M mP@5 | M mP@10 | H mP@1 | H mP@5 | H mP@10 | eval time (s) |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)
_MAP_LINE = re.compile(r">> (\w+): mAP M: (\S+), H: (\S+)\s*$", re.MULTILINE)
_PR_LINE = re.compile(r">> (\w+): mP@k\[[^\]]*\] M: \[([^\]]*)\], H: \[([^\]]*)\]")


@dataclass(frozen=True)
class Scores:
    """What oxford_paris_eval printed for one model: mAP and mP@[1,5,10] (percent) for Medium and Hard."""

    map_medium: float
    map_hard: float
    pr_medium: tuple[float, ...]
    pr_hard: tuple[float, ...]


@dataclass(frozen=True)
class Row:
    """One line of the demo's table."""

    model: str
    descriptor: str
    scores: Scores
    seconds: float


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; the defaults run in under five minutes on two CPU cores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", "--out", type=Path, default=Path("output/whiten_mtd_demo"))
    parser.add_argument("--imsize", type=int, default=32, help="crop size of teacher training, PCA and distillation")
    parser.add_argument("--styles", type=int, default=4, help="ink-mass style groups per digit (landmarks = 10×)")
    parser.add_argument("--queries-per-digit", type=int, default=2, help="revisitop queries per digit")
    parser.add_argument("--teacher-steps", type=int, default=120, help="SGD steps of the digit teacher (mocov3)")
    parser.add_argument("--finetune-steps", type=int, default=30, help="further steps on landmarks (barlowtwins)")
    parser.add_argument("--teacher-batch-size", type=int, default=32)
    parser.add_argument("--teacher-lr", type=float, default=0.2, help="peak SGD learning rate of the teachers")
    parser.add_argument("--pca-dim", type=int, default=16, help="PCA-whitening output dim (gld_pca_learn --embed_dim)")
    parser.add_argument("--epochs", type=int, default=30, help="gld_distill epochs")
    parser.add_argument("-b", "--batch-size", type=int, default=10, help="gld_distill landmarks (pairs) per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="gld_distill --lr (the paper's 1e-3 is for 200 epochs)")
    parser.add_argument("-p", type=float, default=3.0, help="GeM power of teachers and student (the paper's 3)")
    parser.add_argument("--raw-teachers", action="store_true", help="also evaluate the teachers without --pca")
    parser.add_argument("-ms", "--multiscale", action="store_true", help="evaluate with -ms (about 3x slower)")
    parser.add_argument("--device", default="auto", help="device of the teacher training: auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.styles < 3:
        parser.error("--styles must be at least 3 (easy, junk and hard need three style groups)")
    counts = (args.imsize, args.queries_per_digit, args.teacher_steps, args.finetune_steps, args.teacher_batch_size)
    if min(*counts, args.epochs, args.pca_dim) < 1:
        parser.error(
            "--imsize, --queries-per-digit, --teacher-steps, --finetune-steps, --teacher-batch-size, --epochs and "
            "--pca-dim must be >= 1"
        )
    if not 2 <= args.batch_size <= 10 * args.styles:
        parser.error(f"-b must be between 2 and the number of landmarks ({10 * args.styles})")
    return args


def style_groups(images: np.ndarray, digits: np.ndarray, bounds: dict[int, np.ndarray]) -> np.ndarray:
    """Style group of every image: where its ink mass falls among its digit's group bounds (0 = thinnest)."""
    ink = images.reshape(len(images), -1).sum(axis=1, dtype=np.int64)
    return np.array(
        [np.searchsorted(bounds[int(d)], value, side="right") for value, d in zip(ink, digits, strict=True)]
    )


def style_bounds(images: np.ndarray, digits: np.ndarray, styles: int) -> dict[int, np.ndarray]:
    """Per digit, the inner ink-mass quantiles that cut its images into `styles` equal groups."""
    ink = images.reshape(len(images), -1).sum(axis=1, dtype=np.int64)
    cuts = np.arange(1, styles) / styles
    return {int(d): np.quantile(ink[digits == d], cuts) for d in np.unique(digits)}


def landmark_labels(digits: np.ndarray, groups: np.ndarray, styles: int) -> np.ndarray:
    """Landmark index of every image: digit × styles + style group."""
    return digits * styles + groups


def revisitop_gnd(
    digits: np.ndarray, groups: np.ndarray, queries: Sequence[int], database: Sequence[int]
) -> list[dict[str, object]]:
    """Per query: same digit and style group = easy, adjacent group = junk, farther group = hard; bbx = whole image."""
    gnd = []
    for q in queries:
        roles: dict[str, list[int]] = {"easy": [], "hard": [], "junk": []}
        for position, i in enumerate(database):
            if digits[i] == digits[q]:
                gap = abs(int(groups[i]) - int(groups[q]))
                roles["easy" if gap == 0 else "junk" if gap == 1 else "hard"].append(position)
        gnd.append({"bbx": [0.0, 0.0, 31.0, 31.0], **roles})
    return gnd


def pick_queries(digits: np.ndarray, per_digit: int, seed: int) -> list[int]:
    """`per_digit` random images of every digit (seeded), in digit order."""
    rng = np.random.default_rng(seed)
    return [int(i) for d in np.unique(digits) for i in rng.permutation(np.flatnonzero(digits == d))[:per_digit]]


def write_demo_data(root: Path, args: argparse.Namespace) -> dict[str, object]:
    """GLDv2 copy of the train digits under `root/gldv2`, revisitop `roxford5k` of the test digits under `root`.

    Returns the train arrays and labels the teachers learn from, and counts for the summary line.
    """
    x_train, y_train, x_test, y_test = digits_arrays()
    bounds = style_bounds(x_train, y_train, args.styles)
    train_groups = style_groups(x_train, y_train, bounds)
    landmarks = landmark_labels(y_train, train_groups, args.styles)
    per_landmark = [[Image.fromarray(x) for x in x_train[landmarks == k]] for k in np.unique(landmarks)]
    write_gldv2(root / "gldv2", per_landmark, seed=args.seed)

    test_groups = style_groups(x_test, y_test, bounds)
    queries = pick_queries(y_test, args.queries_per_digit, args.seed)
    database = [i for i in range(len(y_test)) if i not in set(queries)]
    write_revisitop(
        root,
        DATASET,
        [Image.fromarray(x_test[i]) for i in database],
        [Image.fromarray(x_test[i]) for i in queries],
        revisitop_gnd(y_test, test_groups, queries, database),
    )
    return {
        "images": x_train,
        "labels": {"digit": y_train, "landmark": landmarks},
        "landmarks": len(per_landmark),
        "queries": len(queries),
        "database": len(database),
    }


def teacher_trunk(p: float) -> nn.Module:
    """A ResNet-50 as the mocov3 / barlowtwins factories build it: no fc, GeM(p) pooling, L2-normalised output."""
    model = resnet50(pretrained=False, num_classes=0)
    model.avgpool = GeneralizedMeanPooling(p)
    return model


def teacher_augment(imsize: int) -> T.Compose:
    """Teacher-training crops: RandomResizedCrop 0.6-1 (milder than distillation's 0.4-1, no flip), ImageNet norm."""
    return T.Compose(
        [T.RandomResizedCrop(imsize, scale=(0.6, 1.0)), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )


def train_teacher(  # noqa: PLR0917 -- one training stage's inputs
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    steps: int,
    lr: float,
    args: argparse.Namespace,
    *,
    seed: int,
) -> dict[str, torch.Tensor]:
    """Train `model` (BatchNorm in train mode) with a normalised-softmax classifier on `labels`; its state_dict.

    SGD (Nesterov momentum 0.9, weight decay 5e-4) under a one-cycle schedule peaking at `lr`: a
    from-scratch ResNet-50 learns the digits in a few hundred steps this way, where Adam at 1e-3 barely starts.
    """
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    model.train()
    classes = int(labels.max()) + 1
    centres = nn.Parameter(0.01 * torch.randn(classes, model.embed_dim, device=device))
    params = [*model.parameters(), centres]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.15)
    augment = teacher_augment(args.imsize)
    pictures = [Image.fromarray(x) for x in images]
    targets = torch.as_tensor(labels, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(steps), desc=f"teacher ({classes} classes)", leave=False):
        batch = torch.randint(len(pictures), (args.teacher_batch_size,), generator=generator)
        x = torch.stack([augment(pictures[i]) for i in batch.tolist()]).to(device)
        logits = CLASSIFIER_SCALE * model(x) @ nn.functional.normalize(centres, dim=1).T
        loss = nn.functional.cross_entropy(logits, targets[batch].to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def train_teachers(data: dict[str, object], args: argparse.Namespace, device: torch.device) -> dict[str, dict]:
    """Both teachers' trunks: `mocov3` learns the digits from scratch, `barlowtwins` continues from it on landmarks
    (peak learning rate / 10, so it keeps the digits).

    Sharing the digit stage keeps the demo within its time budget; the landmark stage makes the second teacher
    separate styles that the first one does not (Hard), so the two disagree where the fusion strategy matters.
    """
    torch.manual_seed(args.seed)
    model = teacher_trunk(args.p).to(device)
    for block in model.modules():  # zero-init the last BN of every residual branch: fast, stable from-scratch start
        if isinstance(block, Bottleneck):
            nn.init.zeros_(block.bn3.weight)
    labels = data["labels"]
    digit = train_teacher(
        model, data["images"], labels["digit"], args.teacher_steps, args.teacher_lr, args, seed=args.seed
    )
    landmark = train_teacher(
        model, data["images"], labels["landmark"], args.finetune_steps, args.teacher_lr / 10, args, seed=args.seed + 1
    )
    return {"mocov3": digit, "barlowtwins": landmark}


def write_teacher_file(name: str, trunk: dict[str, torch.Tensor], weights_dir: Path) -> Path:
    """Save a trained trunk as teacher `name`'s original file (`TEACHER_FILES[name]`, key layout of the authors)."""
    entry, prefix = TEACHER_LAYOUTS[name]
    return save(
        weights_dir / TEACHER_FILES[name], {"epoch": 0, entry: {prefix + k: v for k, v in trunk.items()}}, meta=False
    )


def write_random_student(path: Path, p: float, seed: int) -> Path:
    """A seeded random ResNet-18 student as a gld_distill checkpoint (`module.base_encoder.*`), for reference."""
    torch.manual_seed(seed)
    student = build_student("resnet18", 512, p)
    return save(
        path, {"epoch": 0, "state_dict": {STUDENT_PREFIX + k: v for k, v in student.state_dict().items()}}, meta=False
    )


def script_command(script: str) -> list[str]:
    """How to run entry script `script` (e.g. gld_distill): the file at the package root, else its module's main."""
    path = PACKAGE_ROOT / f"{script}.py"
    if path.is_file():
        return [sys.executable, str(path)]
    return [sys.executable, "-c", f"from whiten_mtd.{script}_main import main; main()"]


def run_script(script: str, argv: list[str], log_file: Path) -> tuple[str, float]:
    """Run an entry script as a subprocess (cwd unchanged), append its output to `log_file`; (output, seconds)."""
    command = [*script_command(script), *argv]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    with log_file.open("a", encoding="utf-8") as log:
        log.write(f"\n$ python {script}.py {' '.join(argv)}\n{output}")
    if done.returncode != 0:
        raise KdReproError(f"{script}.py {' '.join(argv)} failed (exit {done.returncode}); see {log_file}")
    return output, time.perf_counter() - start


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(value) for value in text.replace(",", " ").split())


def parse_scores(output: str, dataset: str = DATASET) -> Scores:
    """The `>> <dataset>: mAP M: .., H: ..` and `mP@k[..] M: [..], H: [..]` lines of oxford_paris_eval's output."""
    maps = [m for m in _MAP_LINE.finditer(output) if m.group(1) == dataset]
    prs = [m for m in _PR_LINE.finditer(output) if m.group(1) == dataset]
    if not maps or not prs:
        raise KdReproError(f"oxford_paris_eval printed no '>> {dataset}: mAP M: ..' / 'mP@k' lines")
    return Scores(
        float(maps[-1].group(2)), float(maps[-1].group(3)), _floats(prs[-1].group(2)), _floats(prs[-1].group(3))
    )


def pca_learn_argv(teacher: str, args: argparse.Namespace) -> list[str]:
    """gld_pca_learn.py on every demo train image, dumped where the PCA loader looks for `teacher`."""
    return [
        "-t", teacher, "--imsize", str(args.imsize), "-p", str(args.p), "--num_samples", "-1", "-b", "100",
        "--embed_dim", str(args.pca_dim), "--num_workers", "0", "--world_size", "1", "--gld_root_path", "data/gldv2",
        "--path_to_pretrained_weights", "weights", "--dump_to", str(pca_path("weights", teacher)),
        "--seed", str(args.seed),
    ]  # fmt: skip


def distill_argv(args: argparse.Namespace) -> list[str]:
    """gld_distill.py: ResNet-18 from the two demo teachers, a snapshot at the last epoch."""
    return [
        "-a", "resnet18", "-ts", *TEACHERS, "-c", "checkpoints", "--gld_root_path", "data/gldv2",
        "--path_to_pretrained_weights", "weights", "-b", str(args.batch_size), "--num_workers", "0",
        "--epochs", str(args.epochs), "--lr", str(args.lr), "--snapshot_step", str(args.epochs),
        "--imsize", str(args.imsize),
        "-p", str(args.p), "--world_size", "1", "--no_imagenet_init", "--seed", str(args.seed),
    ]  # fmt: skip


def eval_argv(model_flags: list[str], args: argparse.Namespace) -> list[str]:
    """oxford_paris_eval.py on the demo's roxford5k, multi-scale, as the README's evaluation command."""
    return [
        *model_flags, "-dp", "data", "-d", DATASET, "-p", str(args.p), "--embed_dim", "512",
        "--path_to_pretrained_weights", "weights", "--num_workers", "0", "--world_size", "1",
        *(["-ms"] if args.multiscale else []),
    ]  # fmt: skip


def evaluations(args: argparse.Namespace, student: str) -> list[tuple[str, str, list[str]]]:
    """(model label, descriptor label, model flags) of every row, teachers first."""
    rows = []
    for teacher in TEACHERS:
        label = f"{teacher} (ResNet-50, {TEACHER_TASKS[teacher]} classifier)"
        if args.raw_teachers:
            rows.append((label, "2048-d GeM, L2", ["-t", teacher]))
        rows.append((label, f"+ PCA-whitening, {args.pca_dim}-d", ["-t", teacher, "--pca"]))
    rows.append(("ResNet-18 student, random init", "512-d", ["-a", "resnet18", "-r", "checkpoints/random_init.pt"]))
    rows.append((f"ResNet-18 student, distilled {args.epochs} epochs", "512-d", ["-a", "resnet18", "-r", student]))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """The mAP table in markdown (percent, two decimals)."""
    lines = [TABLE_HEADER]
    for row in rows:
        s = row.scores
        cells = [s.map_medium, s.map_hard, *s.pr_medium, *s.pr_hard]
        lines.append(
            f"| {row.model} | {row.descriptor} | " + " | ".join(f"{c:.2f}" for c in cells) + f" | {row.seconds:.0f} |"
        )
    return "\n".join(lines)


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Write the data, train the teachers, then PCA, distillation and evaluation through the real scripts."""
    args = parse_args(argv)
    seed_everything(args.seed)
    device = resolve_device(args.device)
    work = args.output_dir.resolve()
    for stale in ("data", "weights", "checkpoints"):  # every number must come from this run
        shutil.rmtree(work / stale, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    log_file = work / "demo.log"
    log_file.write_text("", encoding="utf-8")
    data = write_demo_data(work / "data", args)
    print(
        f"Digits as landmarks in {work / 'data'}: GLDv2 layout with {data['landmarks']} landmarks (digit × "
        f"{args.styles} ink styles, 1500 images); revisitop {DATASET} with {data['queries']} queries and "
        f"{data['database']} database images; logs in {log_file}",
        flush=True,
    )
    start = time.perf_counter()
    for teacher, trunk in train_teachers(data, args, device).items():
        write_teacher_file(teacher, trunk, work / "weights")
    seconds = time.perf_counter() - start
    print(
        f"Trained the teachers ({args.teacher_steps} digit steps, then {args.finetune_steps} landmark steps) "
        f"in {seconds:.0f} s",
        flush=True,
    )
    with contextlib.chdir(work):
        for teacher in TEACHERS:
            _, seconds = run_script("gld_pca_learn", pca_learn_argv(teacher, args), log_file)
            print(f"gld_pca_learn.py -t {teacher}: {seconds:.0f} s", flush=True)
        _, seconds = run_script("gld_distill", distill_argv(args), log_file)
        print(f"gld_distill.py ({args.epochs} epochs): {seconds:.0f} s", flush=True)
        write_random_student(Path("checkpoints/random_init.pt"), args.p, args.seed)
        student = f"checkpoints/checkpoint_{args.epochs}.pt"
        rows = []
        for model, descriptor, flags in evaluations(args, student):
            output, seconds = run_script("oxford_paris_eval", eval_argv(flags, args), log_file)
            rows.append(Row(model, descriptor, parse_scores(output), seconds))
            print(f"oxford_paris_eval.py {' '.join(flags)}: {seconds:.0f} s", flush=True)
    total = time.perf_counter() - start
    print(
        f"\n{DATASET}-format split of the digits test set ({data['queries']} queries, {data['database']} images), "
        f"{'multi-scale (1, 1/√2, 1/2)' if args.multiscale else 'single-scale'} descriptors, GeM p {args.p:g}, "
        "queries not cropped; percentages "
        f"(teachers to table: {total:.0f} s)\n"
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()

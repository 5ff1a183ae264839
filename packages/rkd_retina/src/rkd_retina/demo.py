"""End-to-end demo on drawn fundi: train SuperRetina with `train_base`, register a FIRE-format set with `test_on_FIRE`.

It draws fundus-like images (`rkd_retina.dataset.procedural_fundus`: vessel trees from an optic disc, labelled at their
bifurcations, with affine and photometric variation) and writes, under `<output-dir>/data`, a small `Our_data`
(labelled train/val splits), an `Auxilliary_Training` folder of unlabelled images and a FIRE-format set of 134 pairs
whose query is its reference under a known rotation and shift (S small, A moderate, P large). It writes
`config/train_demo.yaml` and `config/test_demo_trained.yaml` there (the paper configs with a small image size, few
epochs, no loader workers or anomaly detection), runs the real `train_base.main` and `test_on_FIRE.main` from
`<output-dir>` (the originals read `./config`, `./data` and write `./CheckPoints` relative to the working directory)
and prints the FIRE table of the trained checkpoint (`--compare-untrained` adds a row for the seed-42 initialisation
train_base starts from). A match picture (the predictor's own drawing) and the
registration overlay of one pair are saved as PNGs. Defaults aim at under eight minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import matplotlib.pyplot as plt
import numpy as np
import torch
import yaml

from kdrepro_shared.device import resolve_device
from kdrepro_shared.errors import KdReproError, exit_on_user_error
from rkd_retina import test_on_FIRE, train_base
from rkd_retina.common.eval_util import compute_auc
from rkd_retina.dataset.fake_data import write_image
from rkd_retina.dataset.fire import FIRE_CATEGORY_SIZES, write_fake_fire
from rkd_retina.dataset.procedural_fundus import draw_fundus, fundus_rgb
from rkd_retina.model.superRetina import SuperRetina
from rkd_retina.predictor import Predictor, read_config
from rkd_retina.test_on_FIRE import FireRecord

TRAIN_CONFIG = "config/train_demo.yaml"
CHECKPOINT_PREFIX = "./CheckPoints/Model_Demo.pth"
UNTRAINED_CHECKPOINT = "./CheckPoints/Model_Demo_untrained.pth"
TRAIN_SEED = 42  # train_base seeds torch with 42 before building the model: the untrained row is that init
# FIRE-format warps per category: (max rotation in degrees, max shift as a fraction of the size).
FIRE_WARPS = {"S": (4.0, 0.03), "A": (8.0, 0.08), "P": (12.0, 0.15)}
FIRE_SEED_OFFSET = 100_000  # FIRE images never reuse a training image's seed
SHOWN_PAIR = "A01"
TABLE_HEADER = (
    "| checkpoint | failed % | inaccurate % | acceptable % | S | P | A | mAUC | eval time (s) |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; the defaults run in under eight minutes on two CPU cores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("output/rkd_retina_demo"))
    parser.add_argument("--image-size", type=int, default=96, help="model input size (training and FIRE)")
    parser.add_argument("--raw-size", type=int, default=192, help="size of the drawn images")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-images", type=int, default=20, help="labelled training images")
    parser.add_argument("--val-images", type=int, default=2, help="labelled validation images")
    parser.add_argument("--auxiliary-images", type=int, default=4, help="unlabelled training images")
    parser.add_argument(
        "--compare-untrained", action="store_true", help="also evaluate the seed-42 initialisation (doubles eval time)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn data")
    args = parser.parse_args(argv)
    if args.image_size % 8 or args.image_size < 32 or args.raw_size < args.image_size:
        parser.error("--image-size must be a multiple of 8 (at least 32) and --raw-size at least --image-size")
    return args


def demo_train_config(args: argparse.Namespace, device: str) -> dict[str, dict[str, Any]]:
    """config/train.yaml with the demo's image size, epochs, device, checkpoint prefix and no PKE figures."""
    return {
        "MODEL": {
            "nms_size": 20,
            "nms_thresh": 0.5,
            "batch_size": 1,
            "num_epoch": args.epochs,  # demo (paper: 150)
            "device": device,  # demo (paper: cuda:1)
            "load_pre_trained_model": False,
            "pretrained_path": "./save/",
            "model_save_path": CHECKPOINT_PREFIX,  # demo (paper: ./CheckPoints/Model_Base.pth)
            "model_save_epoch": 1,
            "num_workers": 0,  # demo (paper scripts: 8 loader workers)
            "detect_anomaly": False,  # demo (paper scripts: anomaly detection on, slower)
            "resume_training_state": False,
            "teacher_path": "./save/SuperRetina.pth",
            "log_dir": None,
            "wandb": False,
        },
        "DATASET": {
            "model_image_width": args.image_size,  # demo (paper: 768)
            "model_image_height": args.image_size,  # demo (paper: 768)
            "dataset_path": "./data/Our_data",
            "train_split_file": "train.txt",
            "val_split_file": "val.txt",
            "auxiliary": "./data/Auxilliary_Training",
        },
        "PKE": {
            "pke_start_epoch": 1,
            "geometric_thresh": 0.5,
            "content_thresh": 0.7,
            "gaussian_kernel_size": 13,
            "gaussian_sigma": 2,
            "pke_show": False,  # demo (paper: true, a figure per epoch)
            "pke_show_epoch": 1,
            "pke_show_list": [],
        },
        "VALUE_MAP": {
            "area": 8,
            "value_increase_point": 5,
            "value_increase_area": 1,
            "value_decay": 1,
            "is_value_map_save": False,
            "value_map_save_dir": "./data/lab_values",
        },
    }


def demo_test_config(args: argparse.Namespace, device: str, checkpoint: str) -> dict[str, dict[str, Any]]:
    """config/test.yaml for the SuperRetina checkpoint `checkpoint` at the demo's image size."""
    return {
        "PREDICT": {
            "device": device,  # demo (paper: cuda:0)
            "knn_thresh": 0.9,
            "model_image_height": args.image_size,  # demo (paper: 768)
            "model_image_width": args.image_size,  # demo (paper: 768)
            "model_save_path": checkpoint,  # demo (paper: ./save/SwinEncoder.pth)
            "nms_size": 10,
            "nms_thresh": 0.01,
            "use_matching_trick": True,
            "model_name": "SuperRetina",  # demo (paper: Swin)
        }
    }


def write_yaml(path: Path, config: dict[str, Any]) -> Path:
    """Write `config` as YAML (key order kept), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def write_labelled_split(our: Path, split: str, seeds: Sequence[int], size: int) -> None:
    """Drawn images with their bifurcation labels (normalised `x y` rows) and the `ImageSets/<split>.txt` list."""
    lines = []
    for seed in seeds:
        fundus = draw_fundus(size, seed)
        stem = f"fundus_{seed:06d}"
        write_image(our / "ImageData" / f"{stem}.jpg", fundus.image)
        (our / "Annotations").mkdir(parents=True, exist_ok=True)
        np.savetxt(our / "Annotations" / f"{stem}.txt", fundus.keypoints / size, fmt="%.6f")
        lines.append(f"{stem}.jpg, {stem}.txt")
    (our / "ImageSets").mkdir(parents=True, exist_ok=True)
    (our / "ImageSets" / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_demo_training_data(root: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """`<root>/Our_data` (train/val splits of labelled drawings) and `<root>/Auxilliary_Training` (unlabelled)."""
    our, aux = root / "Our_data", root / "Auxilliary_Training"
    first = args.seed * 1000
    train_seeds = range(first, first + args.train_images)
    val_seeds = range(train_seeds.stop, train_seeds.stop + args.val_images)
    write_labelled_split(our, "train", train_seeds, args.raw_size)
    write_labelled_split(our, "val", val_seeds, args.raw_size)
    for seed in range(val_seeds.stop, val_seeds.stop + args.auxiliary_images):
        write_image(aux / f"fundus_{seed:06d}.jpg", draw_fundus(args.raw_size, seed).image)
    return our, aux


def write_demo_fire(root: Path, args: argparse.Namespace) -> Path:
    """`<root>/FIRE` with 71 S, 49 P and 14 A drawn pairs, each category under its own warp range."""
    for index, (category, count) in enumerate(FIRE_CATEGORY_SIZES.items()):
        max_angle, max_shift = FIRE_WARPS[category]
        write_fake_fire(
            root,
            pairs=[f"{category}{i:02d}" for i in range(1, count + 1)],
            size=args.raw_size,
            max_angle=max_angle,
            max_shift=max_shift,
            seed=FIRE_SEED_OFFSET * (index + 1) + args.seed * 1000,
            draw=fundus_rgb,
        )
    return root / "FIRE"


def write_untrained_checkpoint(path: Path) -> Path:
    """The seeded initialisation train_base starts from, as a `{'net', 'optimizer', 'epoch'}` checkpoint."""
    torch.manual_seed(TRAIN_SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"net": SuperRetina().state_dict(), "optimizer": {}, "epoch": -1}, path)
    return path


def run_logged(entry: Callable[[list[str]], Any], argv: list[str], log_file: Path) -> tuple[Any, float]:
    """Run an entry point with stdout and stderr (progress bars) appended to `log_file`; return (result, seconds)."""
    start = time.perf_counter()
    with log_file.open("a", encoding="utf-8") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        print(f"\n$ {entry.__module__} {' '.join(argv)}", flush=True)
        try:
            result = entry(argv)
        except SystemExit as err:
            raise KdReproError(
                f"{entry.__module__} {' '.join(argv)} failed (exit {err.code}); see {log_file}"
            ) from None
    return result, time.perf_counter() - start


@contextlib.contextmanager
def show_saves_to(path: Path) -> Iterator[None]:
    """Make `plt.show()` save the current figure to `path` (the predictor's drawing ends with `plt.show()`)."""
    original = plt.show
    plt.show = lambda *_, **__: plt.savefig(path, bbox_inches="tight")
    try:
        yield
    finally:
        plt.show = original


def save_match_pictures(config_path: Path, fire: Path, out: Path, log_file: Path) -> tuple[Path, Path]:
    """The predictor's match drawing and the red/green registration overlay of `SHOWN_PAIR`, as PNGs in `out`."""
    query, refer = fire / "Images" / f"{SHOWN_PAIR}_2.jpg", fire / "Images" / f"{SHOWN_PAIR}_1.jpg"
    match_png, overlay_png = out / "match.png", out / "registration.png"
    with log_file.open("a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        predictor = Predictor(read_config(config_path))
        with show_saves_to(match_png):
            predictor.match(str(query), str(refer), show=True)
        merged = predictor.align_image_pair(str(query), str(refer))
    plt.close("all")
    overlay = np.zeros((1, 1, 3), np.uint8) if merged is None else merged
    cv2.imwrite(str(overlay_png), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
    return match_png, overlay_png


def table_row(label: str, record: FireRecord, seconds: float) -> str:
    """One markdown row: failed/inaccurate/acceptable percentages, S/P/A AUC, mAUC and evaluation time."""
    n = record.image_num
    acceptable = n - record.failed - record.inaccurate
    auc = compute_auc(record.auc_record["S"], record.auc_record["P"], record.auc_record["A"])
    return (
        f"| {label} | {100 * record.failed / n:.2f} | {100 * record.inaccurate / n:.2f} | {100 * acceptable / n:.2f} "
        f"| {auc['s']:.3f} | {auc['p']:.3f} | {auc['a']:.3f} | {auc['mAUC']:.3f} | {seconds:.0f} |"
    )


def evaluate(name: str, label: str, *, args: argparse.Namespace, device: str, checkpoint: str, log_file: Path) -> str:
    """Write `config/test_demo_<name>.yaml` for `checkpoint`, run test_on_FIRE on ./data/FIRE, return its table row."""
    config_path = write_yaml(Path(f"config/test_demo_{name}.yaml"), demo_test_config(args, device, checkpoint))
    record, seconds = run_logged(test_on_FIRE.main, ["--config", str(config_path), "--data-path", "./data/"], log_file)
    return table_row(label, record, seconds)


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Draw the data, train SuperRetina through train_base, evaluate before/after on the FIRE-format set."""
    args = parse_args(argv)
    device = str(resolve_device(args.device))
    work = args.output_dir.resolve()
    for stale in ("data", "CheckPoints", "config"):  # every number must come from this run
        shutil.rmtree(work / stale, ignore_errors=True)
    write_demo_training_data(work / "data", args)
    fire = write_demo_fire(work / "data", args)
    log_file = work / "demo.log"
    log_file.write_text("", encoding="utf-8")
    print(
        f"Drawn data in {work / 'data'}: Our_data {args.train_images} train + {args.val_images} val labelled, "
        f"{args.auxiliary_images} auxiliary, FIRE 134 pairs ({args.raw_size} px); logs in {log_file}"
    )
    with contextlib.chdir(work):
        write_yaml(Path(TRAIN_CONFIG), demo_train_config(args, device))
        run_eval = functools.partial(evaluate, args=args, device=device, log_file=log_file)
        rows = []
        if args.compare_untrained:
            write_untrained_checkpoint(Path(UNTRAINED_CHECKPOINT))
            rows.append(run_eval("untrained", "untrained (seed 42 init)", checkpoint=UNTRAINED_CHECKPOINT))
        _, train_seconds = run_logged(train_base.main, ["--config", TRAIN_CONFIG], log_file)
        trained = f"{CHECKPOINT_PREFIX}_{args.epochs - 1}"
        rows.append(run_eval("trained", f"trained ({args.epochs} epochs)", checkpoint=trained))
        pictures = save_match_pictures(Path("config/test_demo_trained.yaml"), fire, work, log_file)
    print(
        f"\nSuperRetina, {args.image_size}×{args.image_size} input, trained {args.epochs} epochs in "
        f"{train_seconds:.0f} s on {device}; FIRE protocol of test_on_FIRE (matching trick on)\n"
    )
    print(TABLE_HEADER)
    print("\n".join(rows))
    print(f"\nMatch picture of {SHOWN_PAIR}: {pictures[0]}; registration overlay: {pictures[1]}")


if __name__ == "__main__":
    main()

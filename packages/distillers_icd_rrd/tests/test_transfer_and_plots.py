"""transfer_student, plot_corr and plot_tsne end to end on tiny fake data, with the seed's CWD-relative paths.

transfer_student probes a student `*_last.pth` (the seed's {opt: Namespace, model} format) on a fake STL-10, both
with the seed's hard-coded wrn_16_2 override and with `--use_cli_student`. The plot scripts read a fake CIFAR-100
test set of 500 images, a resnet8 teacher in the RepDistiller checkpoint layout and resnet8 student checkpoints.
"""

from __future__ import annotations

import argparse
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image
from tensorboardX.proto.event_pb2 import Event

from distillers_icd_rrd import plot_corr, plot_tsne, transfer_student
from distillers_icd_rrd.models import model_dict
from kdrepro_shared.data import write_cifar, write_fake_stl10

matplotlib.use("Agg")  # headless, whatever the environment selects (pyplot switches even after its import)
# The plot scripts hard-code num_workers=8 (4 test-loader workers), as the seed does; torch warns on small machines.
pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")

FAST = ["--epochs", "1", "--num_workers", "0", "--batch_size", "8", "--print_freq", "1000"]
SEED_FOLDER = "save/ft/models/wrn_16_2_stl10_lr_0.05_decay_0.0005_trial_0"
TEACHER = "save/models/resnet8_vanilla/ckpt_epoch_240.pth"
STUDENT_LAST = "save/student/student_model/KD_run/resnet8_last.pth"
STUDENT_BEST = "save/student/student_model/KD_run/resnet8_best.pth"
ACC_LINE = re.compile(r" \* Acc@1 (\S+) Acc@5 (\S+)")
N_TEST = 256  # two test batches: the plot scripts ask for batch 256, so the test loader's batch is 128


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """One intra-op thread: these tiny CPU runs are faster without OpenMP contention on a small, busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def write_student_last(path: Path, name: str, seed: int) -> dict[str, torch.Tensor]:
    """Save a random `name` student as train_student's `{model_s}_last.pth` ({opt: Namespace, model}); return it."""
    torch.manual_seed(seed)
    state = model_dict[name](num_classes=100).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"opt": argparse.Namespace(model_s=name, distill="kd"), "model": state}, path)
    return state


def read_scalars(log_dir: Path) -> dict[str, list[float]]:
    """Every scalar under `log_dir` by tag (tfevents = TFRecords of u64 length, u32 crc, Event payload, u32 crc)."""
    values: dict[str, list[float]] = {}
    for path in sorted(log_dir.rglob("events.out.tfevents.*")):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            event = Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                values.setdefault(value.tag, []).append(value.simple_value)
    return values


def printed_accuracies(out: str) -> list[float]:
    """The top-1 and top-5 of every ` * Acc@1 … Acc@5 …` summary line."""
    return [float(x) for match in ACC_LINE.finditer(out) for x in match.groups()]


def assert_percentages(values: list[float], count: int) -> None:
    """`count` accuracies, each a finite number in [0, 100]."""
    assert len(values) == count
    assert all(np.isfinite(v) and 0.0 <= v <= 100.0 for v in values), values


def assert_png(path: Path, min_side: int = 500) -> None:
    """A valid PNG file at least `min_side` pixels on each side (the seed saves at dpi 300)."""
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= min_side, image.size


@pytest.fixture
def stl10_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CWD holding a fake STL-10 (20 train, 10 test images) in ./data."""
    monkeypatch.chdir(tmp_path)
    write_fake_stl10(tmp_path / "data")
    return tmp_path


def _check_probe(folder: Path, student: dict[str, torch.Tensor], fc_shape: tuple[int, int]) -> None:
    """The saved probe: new fc, every other parameter frozen at the student's, BN stats moved (the seed's quirk)."""
    last = torch.load(folder / f"{folder.name.split('_stl10')[0]}_last.pth", weights_only=False)
    assert set(last) == {"opt", "model", "optimizer"}
    model = last["model"]
    assert tuple(model["fc.weight"].shape) == fc_shape
    assert not torch.equal(model["fc.bias"], torch.zeros(fc_shape[0]))  # trained from the zero init
    frozen = [k for k in model if not k.startswith("fc.") and "running" not in k and "num_batches" not in k]
    assert frozen and all(torch.equal(model[k], student[k]) for k in frozen)
    moved = [k for k in model if k.endswith("running_mean")]
    assert moved and all(not torch.equal(model[k], student[k]) for k in moved)
    assert len(last["optimizer"]["param_groups"][0]["params"]) == 2  # fc.weight and fc.bias only


def test_transfer_keeps_the_seed_override(stl10_cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    student = write_student_last(stl10_cwd / "save/wrn_16_2_last.pth", "wrn_16_2", seed=0)
    transfer_student.main([*FAST, "--model_s", "resnet8", "--path_s", "ignored/resnet8_last.pth"])
    out = capsys.readouterr().out
    assert "Length of STL10 training dataset: 20" in out and "Length of STL10 validation dataset: 10" in out
    assert "all layers except the last `fc` layer are frozen" in out
    assert_percentages(printed_accuracies(out), 4)  # train and test summaries
    _check_probe(stl10_cwd / SEED_FOLDER, student, (10, 128))
    scalars = read_scalars(stl10_cwd / "save/ft/tensorboard/wrn_16_2_stl10_lr_0.05_decay_0.0005_trial_0")
    for tag in ("train_acc", "test_acc", "test_acc_top5"):
        assert_percentages(scalars[tag], 1)
    assert all(np.isfinite(scalars[tag][0]) and scalars[tag][0] > 0 for tag in ("train_loss", "test_loss"))


def test_transfer_with_the_cli_student(stl10_cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    student = write_student_last(stl10_cwd / STUDENT_LAST, "resnet8", seed=1)
    transfer_student.main([*FAST, "--use_cli_student", "--model_s", "resnet8", "--path_s", STUDENT_LAST])
    assert_percentages(printed_accuracies(capsys.readouterr().out), 4)
    _check_probe(stl10_cwd / "save/ft/models/resnet8_stl10_lr_0.05_decay_0.0005_trial_0", student, (10, 64))
    assert not (stl10_cwd / SEED_FOLDER).exists()


@pytest.fixture(scope="module")
def plot_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake CIFAR-100 (100 train, 256 test images), a resnet8 teacher and resnet8 student checkpoints.

    The first 50 test labels cycle over classes 0-9 (the rest over all 100), so the top-10 t-SNE has 70 points,
    more than its perplexity of 40.
    """
    root = tmp_path_factory.mktemp("plots")
    rng = np.random.default_rng(0)
    test_labels = np.concatenate([np.arange(50) % 10, np.arange(50, N_TEST) % 100])
    images = rng.integers(0, 256, (100 + N_TEST, 32, 32, 3), dtype=np.uint8)
    write_cifar(root / "data", images[:100], np.arange(100), images[100:], test_labels, num_classes=100)
    torch.manual_seed(2)
    teacher = model_dict["resnet8"](num_classes=100).state_dict()
    (root / TEACHER).parent.mkdir(parents=True)
    torch.save({"epoch": 240, "model": teacher, "accuracy": torch.tensor([70.0])}, root / TEACHER)
    student = write_student_last(root / STUDENT_LAST, "resnet8", seed=3)
    torch.save({"epoch": 1, "model": student, "best_acc": torch.tensor([1.0])}, root / STUDENT_BEST)
    return root


def test_plot_corr_writes_the_difference_heat_map(
    plot_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(plot_data)
    plot_corr.main(["--eval", "--model_s", "resnet8", "--path_s", STUDENT_BEST, "--path_t", TEACHER])
    out = capsys.readouterr().out
    accuracies = [float(x) for x in re.findall(r"(Teacher|Student) accuracy: (\S+)%", out) for x in x[1:]]
    assert_percentages(accuracies, 2)
    assert_percentages(printed_accuracies(out), 4)  # top-1 and top-5 of each validation
    difference = re.search(r"Difference: Max: (\S+), Min: (\S+)", out)
    assert difference is not None
    high, low = float(difference[1]), float(difference[2])
    assert -2.0 <= low < 0.0 < high <= 2.0  # a difference of two correlation matrices
    assert_png(plot_data / "fig.png")


def test_plot_corr_multiple_batches_from_a_last_checkpoint(plot_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(plot_data)
    argv = ["--plot_multiple", "--filename", "multi", "--model_s", "resnet8", "--path_s", STUDENT_LAST]
    plot_corr.main([*argv, "--path_t", TEACHER])
    assert sorted(p.name for p in plot_data.glob("multi*.png")) == ["multi_1.png", "multi_2.png"]  # one per batch
    for path in plot_data.glob("multi*.png"):
        assert_png(path)


def test_plot_tsne_writes_both_scatter_plots(
    plot_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(plot_data)
    plot_tsne.main(["--model", "resnet8", "--path", STUDENT_LAST, "--filename", "tsne"])
    out = capsys.readouterr().out
    assert "Computing t-SNE for the first 10 classes..." in out
    assert "for 2 batches" in out
    assert_png(plot_data / "tsne.png")
    assert_png(plot_data / "tsne_top10.png")

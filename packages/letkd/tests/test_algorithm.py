"""The training engine: checkpoint names and contents, resume (`checkpoint=N` / `-1`), best-vs-last tracking,
logs and TensorBoard, the LR look-up tables, evaluation from `.best`, meters, and the one-line errors.

Tiny real networks (CIFAR ResNet-8 with 4/4/8/16 channels, K=32 templates) on 16 random 32×32 images.
"""

from __future__ import annotations

import copy
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboardX.proto import event_pb2
from torch.utils.data import Dataset

from kdrepro_shared.errors import CheckpointError, KdReproError
from letkd.distillation import utils
from letkd.distillation.algorithms.algorithm import load_checkpoint_file
from letkd.distillation.algorithms.classification import (
    Classification,
    ClassificationQUEST,
    ClassificationQUESTValue,
    ClassificationSubQUESTValue,
)
from letkd.distillation.architectures import factory
from letkd.distillation.dataloaders.basic_dataloaders import SimpleDataloader
from letkd.testing import fill_deterministic, write_fake_lda, write_fake_vq

PAPER_LUT = [(150, 0.05), (180, 0.005), (210, 0.0005), (240, 0.00005)]
TRAINED = ("feature_extractor", "classifier", "BoW_predictor", "valueLayer")
LAYERS_FIXTURE = Path(__file__).parent / "fixtures" / "value_layers" / "layers.pt"


class TinyImages(Dataset):
    """Random normalised 32×32 images with labels i % 4 and the dataset `name` the logs print."""

    def __init__(self, n: int, seed: int, name: str) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 3, 32, 32, generator=g)
        self.labels = [i % 4 for i in range(n)]
        self.name = name

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], self.labels[index]


def read_scalars(folder: Path) -> dict[str, list[int]]:
    """The steps of every scalar tag in the tensorboardX event files of `folder` (TFRecord framing)."""
    steps: dict[str, list[int]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 16 + length
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    return steps


def sgd(lut: list | None = None) -> dict:
    params = {"optim_type": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True}
    return params | {"LUT_lr": lut or [(2, 0.05), (4, 0.005)]}


def resnet(depth: int, num_classes: int = 4) -> dict:
    return {
        "depth": depth,
        "num_filters": [4, 4, 8, 16],
        "num_classes": num_classes,
        "extract_from": ["layer3"],
        "extract_after_relu": [False],
    }


def teacher_file(tmp_path: Path, num_classes: int = 4) -> str:
    teacher = fill_deterministic(factory("feature_extractors.resnet", resnet(8, num_classes)), "teacher")
    path = tmp_path / "saved_models" / "resnet8_vanilla" / "ckpt_epoch_240.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 240, "model": teacher.state_dict(), "accuracy": torch.tensor(50.0), "optimizer": {}}, path)
    return str(path)


def letkd1_config(tmp_path: Path, epochs: int = 3, lut: list | None = None) -> dict:
    """A tiny letKD-1 config with the paper config's structure (network order, keys, optimizer options)."""
    vq = tmp_path / "experiments" / "VQ" / "CIFAR100" / "tiny" / "RN8" / "vector_quantizer_kmeansK32_net_epoch_.zip"
    write_fake_vq(vq, 32, 16, cuda_saved=True)
    student_optim = sgd(lut) | {"classifier_optim": sgd(lut)}
    return {
        "max_num_epochs": epochs,
        "exp_dir": str(tmp_path / "exp" / "letKD-1"),
        "disp_step": 2,
        "networks": {
            "teacher_net": {
                "def_file": "feature_extractors.resnet",
                "pretrained": teacher_file(tmp_path),
                "opt": resnet(8),
                "optim_params": None,
                "force": True,
            },
            "vector_quantizer_target": {
                "def_file": "miscellaneous.vector_quantization",
                "pretrained": str(vq.with_name("vector_quantizer_kmeansK32_net_epoch*")),
                "opt": {
                    "num_embeddings": 32,
                    "embedding_dim": 16,
                    "commitment_cost": 0.25,
                    "decay": 0.99,
                    "epsilon": 1e-5,
                    "temperature": 1,
                },
                "optim_params": None,
            },
            "student_net": {
                "def_file": "feature_extractors.resnet",
                "pretrained": None,
                "opt": resnet(8),
                "optim_params": student_optim,
            },
            "BoW_predictor": {
                "def_file": "classifiers.classifier",
                "pretrained": None,
                "opt": {
                    "classifier_type": "conv_cosine",
                    "num_classes": 32,
                    "num_channels": 16,
                    "scale_cls": 3.0,
                    "learn_scale": True,
                },
                "optim_params": sgd(lut),
            },
            "valueLayer": {
                "def_file": "miscellaneous.valueLayer",
                "pretrained": None,
                "opt": {"emb_size": 32, "inp_size": 16},
                "optim_params": sgd(lut),
            },
        },
        "criterions": {"loss": {"ctype": "CrossEntropyLoss", "opt": None}},
        "algorithm_type": "quest_value",
        "quest_loss_coef": 1.0,
    }


def loaders() -> tuple[SimpleDataloader, SimpleDataloader]:
    train = SimpleDataloader(TinyImages(16, 0, "tiny_train"), batch_size=4, train=True, num_workers=0)
    test = SimpleDataloader(TinyImages(8, 1, "tiny_val"), batch_size=4, train=False, num_workers=0)
    return train, test


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    """Three epochs of tiny letKD-1: (tmp folder, config, solve report)."""
    tmp_path = tmp_path_factory.mktemp("letkd1")
    cfg = letkd1_config(tmp_path)
    torch.manual_seed(0)
    alg = ClassificationQUESTValue(copy.deepcopy(cfg))
    train, test = loaders()
    report = alg.solve(train, test)
    alg.close()
    return tmp_path, cfg, report


def test_solve_writes_the_original_checkpoint_files(trained: tuple) -> None:
    _, cfg, report = trained
    exp = Path(cfg["exp_dir"])
    best = report["best_epoch"]
    names = {p.name for p in exp.iterdir() if p.is_file()}
    expected = {f"{k}_{kind}_epoch3" for k in TRAINED for kind in ("net", "optim")}
    expected |= {f"{k}_{kind}_epoch{best}.best" for k in TRAINED for kind in ("net", "optim")}
    assert names == expected
    assert {p.name for p in exp.iterdir() if p.is_dir()} == {"logs", "visuals", "preds"}
    net = load_checkpoint_file(exp / "valueLayer_net_epoch3")
    assert set(net) == {"epoch", "network", "metric"} and net["epoch"] == 3 and net["metric"] is None
    assert set(net["network"]) == {
        "conv_value.layers.weight",
        "conv_value.layers.scale",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    }
    optim = load_checkpoint_file(exp / "feature_extractor_optim_epoch3")
    assert set(optim) == {"epoch", "optimizer"} and optim["epoch"] == 3
    assert optim["optimizer"]["param_groups"][0]["lr"] == 0.005  # epoch index 2 → second LUT entry
    best_file = torch.load(exp / f"classifier_net_epoch{best}.best", weights_only=True)  # metric is a python float
    assert isinstance(best_file["metric"], float)
    assert best_file["metric"] == pytest.approx(report["best"]["AccuracyTop1"])
    assert set(report) == {"last_epoch", "last", "best_epoch", "best"} and report["last_epoch"] == 3
    assert report["best"]["AccuracyTop1"] >= report["last"]["AccuracyTop1"]
    assert list(report["last"]) == [
        "perp_trg_0",
        "mean_assign_dist_0",
        "Accur_vword",
        "loss_quest",
        "loss_cls",
        "loss_total",
        "AccuracyTop1",
        "Error",
    ]


def test_solve_logs_to_file_and_tensorboard(trained: tuple) -> None:
    _, cfg, _ = trained
    logs = Path(cfg["exp_dir"]) / "logs"
    (log_file,) = logs.glob("LOG_INFO_*.txt")
    text = log_file.read_text()
    for line in (
        "Training epoch [  1 /   3]",
        "==> Set to valueLayer optimizer lr = 0.0500000000",
        "==> Dataset: tiny_train [4 batches]",
        "==> Iteration [  1][   2 /    4]",
        "==> Results: ",
        "==> Best results w.r.t. AccuracyTop1 metric: epoch: ",
        "==> Last epoch 3 results",
    ):
        assert line in text, line
    scalars = read_scalars(logs / "TENSORBOARD")
    assert {"train_loss_total", "test_AccuracyTop1", "train_perp_trg_0"} <= set(scalars)
    assert scalars["test_AccuracyTop1"] == [0, 1, 2]  # one point per epoch, global step = 0-based epoch


def test_resume_most_recent_and_explicit_epoch(trained: tuple, tmp_path: Path) -> None:
    _, cfg, _ = trained
    cfg = copy.deepcopy(cfg) | {"max_num_epochs": 4, "exp_dir": str(tmp_path / "exp")}
    for path in Path(trained[1]["exp_dir"]).iterdir():
        if path.is_file():
            (tmp_path / "exp").mkdir(exist_ok=True)
            (tmp_path / "exp" / path.name).write_bytes(path.read_bytes())
    alg = ClassificationQUESTValue(copy.deepcopy(cfg))
    alg.load_checkpoint("*", train=True)  # checkpoint=-1
    assert alg.curr_epoch == 3
    saved = load_checkpoint_file(tmp_path / "exp" / "valueLayer_net_epoch3")["network"]
    for name, value in alg.networks["valueLayer"].state_dict().items():
        assert torch.equal(value, saved[name])
    momentum = load_checkpoint_file(tmp_path / "exp" / "BoW_predictor_optim_epoch3")["optimizer"]["state"][0][
        "momentum_buffer"
    ]
    assert torch.equal(alg.optimizers["BoW_predictor"].state_dict()["state"][0]["momentum_buffer"], momentum)
    train, test = loaders()
    report = alg.solve(train, test)
    alg.close()
    names = {p.name for p in (tmp_path / "exp").iterdir()}
    assert (
        "feature_extractor_net_epoch4" in names and "feature_extractor_net_epoch3" in names
    )  # first resumed epoch keeps N
    assert "feature_extractor_net_epoch4.best" in names  # best tracking restarts at resume, as in the original
    assert report["last_epoch"] == 4 and report["best_epoch"] == 4

    explicit = ClassificationQUESTValue(copy.deepcopy(cfg))
    explicit.load_checkpoint(3, train=True)  # checkpoint=3
    assert explicit.curr_epoch == 3 and explicit.optimizers["valueLayer"] is not None
    with pytest.raises(CheckpointError, match="epoch7 does not exist"):
        explicit.load_checkpoint(7, train=False)
    explicit.close()


def test_evaluate_from_best_reproduces_the_best_epoch(trained: tuple) -> None:
    _, cfg, report = trained
    alg = ClassificationQUESTValue(copy.deepcopy(cfg))
    alg.load_checkpoint("*", train=False, suffix=".best")
    assert alg.curr_epoch == report["best_epoch"]
    stats = alg.evaluate(loaders()[1], use_tensorboard=False)
    alg.close()
    assert stats.average()["AccuracyTop1"] == pytest.approx(report["best"]["AccuracyTop1"])
    assert stats.average()["loss_total"] == pytest.approx(report["best"]["loss_total"], rel=1e-5)


def test_best_files_of_the_original_with_numpy_metrics_load_weights_only(tmp_path: Path) -> None:
    """The original pickled numpy.float64 metrics (spelled `numpy.core...` by numpy 1.x) into `.best` files."""
    buffer = io.BytesIO()
    torch.save({"epoch": 7, "network": {"w": torch.ones(2)}, "metric": np.float64(71.5)}, buffer)
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(tmp_path / "x_net_epoch7.best", "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(
                info,
                data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
                if info.filename.endswith("data.pkl")
                else data,
            )
    loaded = load_checkpoint_file(tmp_path / "x_net_epoch7.best")
    assert loaded["metric"] == 71.5 and loaded["epoch"] == 7


def test_lr_lookup_table_and_optimizer_options(tmp_path: Path) -> None:
    """Probe 10 of the spec: the paper LUT, read at the start of each epoch; SGD nesterov, momentum .9, wd 5e-4."""
    alg = ClassificationQUESTValue(letkd1_config(tmp_path, lut=PAPER_LUT))
    alg.init_all_optimizers()
    assert [k for k, v in alg.optimizers.items() if v is not None] == list(TRAINED)
    expected = {0: 0.05, 149: 0.05, 150: 0.005, 179: 0.005, 180: 5e-4, 209: 5e-4, 210: 5e-5, 239: 5e-5, 240: 5e-5}
    for epoch, lr in expected.items():
        alg.adjust_learning_rates(epoch)
        for key in TRAINED:
            (group,) = alg.optimizers[key].param_groups
            assert group["lr"] == lr
            assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.9, True, 5e-4)
    trainable = sum(p.numel() for key in TRAINED for p in alg.networks[key].parameters() if p.requires_grad)
    assert trainable == sum(
        len(g["params"]) and sum(p.numel() for p in g["params"])
        for key in TRAINED
        for g in alg.optimizers[key].param_groups
    )
    alg.close()


def test_teacher_config_evaluates_but_cannot_train(tmp_path: Path) -> None:
    cfg = {
        "exp_dir": str(tmp_path / "exp"),
        "networks": {
            "student_net": {
                "def_file": "feature_extractors.resnet",
                "pretrained": teacher_file(tmp_path, 10),
                "opt": resnet(8, 10),
                "optim_params": None,
                "force": True,
            }
        },
        "criterions": {"loss": {"ctype": "CrossEntropyLoss", "opt": None}},
    }
    alg = Classification(cfg)
    alg.load_checkpoint("*", train=False)  # a no-op for teacher configs: curr_epoch stays '*'
    assert alg.curr_epoch == "*"
    stats = alg.evaluate(loaders()[1], use_tensorboard=False).average()
    assert set(stats) == {"loss", "AccuracyTop1", "AccuracyTop5"}
    alg.init_all_optimizers()
    with pytest.raises(KdReproError, match="cannot be trained"):
        alg.train_step(next(iter(loaders()[0]())))
    alg.close()


def test_quest_and_letkd2_steps_run_on_tiny_networks(tmp_path: Path) -> None:
    cfg = letkd1_config(tmp_path)
    quest = copy.deepcopy(cfg)
    del quest["networks"]["valueLayer"]
    alg = ClassificationQUEST(quest)
    alg.init_all_optimizers()
    record = alg.train_step(next(iter(loaders()[0]())))
    assert list(record) == [
        "perp_trg_0",
        "mean_assign_dist_0",
        "loss_cls",
        "Accur_vword",
        "loss_quest",
        "loss_total",
        "AccuracyTop1",
        "Error",
    ]
    alg.close()
    letkd2 = copy.deepcopy(cfg)
    nets = letkd2["networks"]
    bow = nets.pop("BoW_predictor")
    nets.pop("valueLayer")
    lda = write_fake_lda(tmp_path / "lda", 16, 60, num_classes=4)
    nets["BoW_predictor_0"] = copy.deepcopy(bow) | {"opt": bow["opt"] | {"num_classes": 32}}
    nets["BoW_predictor_1"] = bow
    nets["valueLayer_0"] = {
        "def_file": "miscellaneous.valueLayer_subclass",
        "opt": {"emb_size": 32, "inp_size": 16, "num_classes": 4, **lda},
        "optim_params": sgd(),
    }
    nets["valueLayer_1"] = {
        "def_file": "miscellaneous.valueLayer",
        "opt": {"emb_size": 32, "inp_size": 16},
        "optim_params": sgd(),
    }
    alg = ClassificationSubQUESTValue(letkd2 | {"which_stage_t": 5, "which_stage_s": 5})
    alg.init_all_optimizers()
    record = alg.train_step(next(iter(loaders()[0]())))
    assert list(record) == [
        "perp_trg_0",
        "mean_assign_dist_0",
        "loss_sub",
        "Accur_vword",
        "loss_quest",
        "loss_cls",
        "loss_total",
        "AccuracyTop1",
        "Error",
    ]
    assert record["loss_total"] == pytest.approx(
        record["loss_cls"] + record["loss_quest"] + record["loss_sub"], rel=1e-5
    )
    alg.close()


def test_missing_quantizer_names_the_kmeans_command(tmp_path: Path) -> None:
    cfg = letkd1_config(tmp_path)
    for path in (tmp_path / "experiments" / "VQ").rglob("*.zip"):
        path.unlink()
    with pytest.raises(CheckpointError, match=r"config=CIFAR100\.tiny\.RN8 kmeans=4096"):
        ClassificationQUESTValue(cfg)


def test_bad_optimizer_and_criterion_are_one_line_errors(tmp_path: Path) -> None:
    cfg = letkd1_config(tmp_path)
    cfg["networks"]["valueLayer"]["optim_params"]["optim_type"] = "rmsprop"
    alg = ClassificationQUESTValue(cfg)
    with pytest.raises(KdReproError, match="valid: sgd, adam"):
        alg.init_all_optimizers()
    with pytest.raises(KdReproError, match=r"nor a torch\.nn loss"):
        alg.init_criterion("NoSuchLoss", None)
    alg.close()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback of cuda=True")
def test_load_to_gpu_falls_back_to_cpu(tmp_path: Path) -> None:
    alg = ClassificationQUESTValue(letkd1_config(tmp_path))
    alg.load_to_gpu()
    assert alg.device.type == "cpu"
    alg.close()


@pytest.mark.gpu
def test_load_to_gpu_moves_everything_to_cuda(tmp_path: Path) -> None:
    alg = ClassificationQUESTValue(letkd1_config(tmp_path))
    alg.load_to_gpu()
    alg.init_all_optimizers()
    images, labels = next(iter(loaders()[0]()))
    record = alg.train_step((images, labels))
    assert alg.tensors["images"].is_cuda and np.isfinite(record["loss_total"])
    assert all(p.is_cuda for net in alg.networks.values() for p in net.parameters())
    alg.close()


@pytest.mark.parity
def test_metrics_and_meters_match_original() -> None:
    golden = torch.load(LAYERS_FIXTURE, weights_only=True)
    logits = torch.randn(16, 10, generator=torch.Generator().manual_seed(10))
    labels = torch.arange(16) % 10
    assert utils.top1accuracy(logits, labels) == golden["metrics/top1"]
    for ours, theirs in zip(utils.accuracy(logits, labels, topk=(1, 5)), golden["metrics/accuracy"], strict=True):
        torch.testing.assert_close(ours, theirs)
    assert list(utils.compute_top1_and_top5_accuracy(logits, labels)) == golden["metrics/top1_top5_np"]
    meter = utils.DAverageMeter("train")
    meter.update({"a": 1.0, "b": [1.0, 2.0], "c": {"d": 3}})
    meter.update({"a": 2.5, "b": [0.0, 1.0], "c": {"d": 4}})
    assert str(meter) == golden["metrics/meter_str"]
    average = meter.average()
    assert (
        average["a"] == golden["metrics/meter_avg"]["a"] and average["b"].tolist() == golden["metrics/meter_avg"]["b"]
    )
    assert average["c"] == golden["metrics/meter_avg"]["c"]

    class Run:
        def __init__(self) -> None:
            self.logged: list = []

        def log_scalar(self, name: str, value: float) -> None:
            self.logged.append((name, float(value)))

    run = Run()
    logged = utils.DAverageMeter("eval", run)
    logged.update({"a": 1.0, "b": [1.0, 3.0]})
    logged.log()
    assert run.logged == [("eval_a", 1.0), ("eval_b_0", 1.0), ("eval_b_1", 3.0)]
    with pytest.raises(TypeError, match="Wrong type"):
        logged.update({"a": "text"})

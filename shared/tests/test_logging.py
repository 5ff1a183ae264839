"""Tests of kdrepro_shared.logging: smoothed meters, the tqdm metric logger, args.yaml, and TensorBoard writers."""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

import pytest
import torch
import yaml
from tensorboardX import SummaryWriter
from tensorboardX.proto.event_pb2 import Event

import kdrepro_shared.logging as kd_logging
from kdrepro_shared.logging import (
    MetricLogger,
    NullSummaryWriter,
    SmoothedValue,
    create_summary_writer,
    save_args_yaml,
)


def read_events(path: Path) -> list[Event]:
    """Parse a tfevents file: TFRecords of (u64 length, u32 crc, payload, u32 crc), each payload an `Event`."""
    data, events, offset = path.read_bytes(), [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        offset += 12
        events.append(Event.FromString(data[offset : offset + length]))
        offset += length + 4
    return events


def scalars(log_dir: Path) -> dict[tuple[str, str, int], float]:
    """Every scalar summary under `log_dir`, keyed by (run, tag, step); add_scalars writes one sub-run per key."""
    return {
        (path.parent.relative_to(log_dir).as_posix(), value.tag, event.step): value.simple_value
        for path in sorted(log_dir.rglob("events.out.tfevents.*"))
        for event in read_events(path)
        for value in event.summary.value
        if value.HasField("simple_value")
    }


def test_smoothed_value_statistics() -> None:
    meter = SmoothedValue(window_size=3)
    for value in [1.0, 2.0, 3.0, 4.0, 5.0]:
        meter.update(value)
    assert (meter.median, meter.avg, meter.max, meter.value) == (4.0, 4.0, 5.0, 5.0)
    assert meter.global_avg == 3.0
    meter.update(8.0, n=5)
    assert (meter.count, meter.total, meter.global_avg) == (10, 55.0, 5.5)
    assert str(meter) == "5.0000 (5.5000)"
    even = SmoothedValue(window_size=4, fmt="{value:.1f} {max:.0f} {avg:.2f}")
    for value in [4.0, 1.0, 3.0, 2.0]:
        even.update(value)
    assert even.median == 2.0  # the lower middle value, as torch.median gives
    assert str(even) == "2.0 4 2.50"


def test_smoothed_value_sync_is_noop_without_group() -> None:
    meter = SmoothedValue()
    meter.update(2.0, n=3)
    meter.synchronize_between_processes()
    assert (meter.count, meter.total) == (3, 6.0)


def test_metric_logger_iterates_and_records(capsys: pytest.CaptureFixture[str]) -> None:
    logger = MetricLogger(delimiter=" | ")
    logger.add_meter("lr", SmoothedValue(window_size=1, fmt="{value:.3f}"))
    seen = []
    for item in logger.log_every(range(10), print_freq=3, header="Epoch: [0]"):
        seen.append(item)
        logger.update(loss=torch.tensor(float(item)), acc=item * 10)
        logger.meters["lr"].update(0.1)
    assert seen == list(range(10))
    assert logger.loss.count == 10
    assert logger.loss.global_avg == 4.5
    assert logger.acc.value == 90.0
    assert str(logger) == f"lr: 0.100 | loss: {logger.loss} | acc: {logger.acc}"
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = logger.missing
    err = capsys.readouterr().err
    assert "Epoch: [0]" in err
    assert "10/10" in err
    assert "loss: 4.0000 (4.5000)" in err  # the postfix after the last step: window median and global average


def test_metric_logger_skips_empty_meters_and_handles_unsized_iterables() -> None:
    logger = MetricLogger()
    logger.add_meter("lr", SmoothedValue())
    assert str(logger) == ""
    assert list(logger.log_every((i for i in range(4)), print_freq=2)) == [0, 1, 2, 3]


def test_metric_logger_silent_off_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(kd_logging, "is_main_process", lambda: False)
    logger = MetricLogger()
    assert list(logger.log_every(range(5), print_freq=1, header="Test:")) == list(range(5))
    assert capsys.readouterr().err == ""


def test_save_args_yaml_round_trip(tmp_path: Path) -> None:
    args = argparse.Namespace(
        lr=0.1,
        epochs=240,
        arch="resnet32x4",
        resume=None,
        amp=False,
        data=tmp_path / "cifar",
        device=torch.device("cpu"),
        milestones=(150, 180, 210),
        loss={"kd": 0.9, "crd": [0.8, "nce"]},
    )
    path = save_args_yaml(args, tmp_path / "run")
    assert path == tmp_path / "run" / "args.yaml"
    loaded = yaml.safe_load(path.read_text())
    assert loaded == {
        "lr": 0.1,
        "epochs": 240,
        "arch": "resnet32x4",
        "resume": None,
        "amp": False,
        "data": str(tmp_path / "cifar"),
        "device": "cpu",
        "milestones": [150, 180, 210],
        "loss": {"kd": 0.9, "crd": [0.8, "nce"]},
    }
    assert list(loaded) == list(vars(args))
    assert yaml.safe_load(save_args_yaml({"seed": 1}, tmp_path).read_text()) == {"seed": 1}


def test_summary_writer_writes_readable_events(tmp_path: Path) -> None:
    writer = create_summary_writer(tmp_path / "tb")
    assert isinstance(writer, SummaryWriter)
    writer.add_scalar("train/loss", 0.5, 1)
    writer.add_scalar("train/loss", 0.25, 2)
    writer.add_scalars("acc", {"top1": 70.0, "top5": 90.0}, 3)
    writer.add_histogram("weights", torch.arange(10.0), 1)
    writer.flush()
    writer.close()
    found = scalars(tmp_path / "tb")
    assert found == {
        (".", "train/loss", 1): 0.5,
        (".", "train/loss", 2): 0.25,
        ("acc/top1", "acc", 3): 70.0,
        ("acc/top5", "acc", 3): 90.0,
    }
    histograms = [
        value.tag
        for path in (tmp_path / "tb").glob("events.out.tfevents.*")
        for event in read_events(path)
        for value in event.summary.value
        if value.HasField("histo")
    ]
    assert histograms == ["weights"]


@pytest.mark.parametrize("main", [True, False])
def test_null_writer_when_disabled_or_off_main(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, main: bool) -> None:
    monkeypatch.setattr(kd_logging, "is_main_process", lambda: main)
    with create_summary_writer(tmp_path / "tb", enabled=not main) as writer:
        assert isinstance(writer, NullSummaryWriter)
        writer.add_scalar("loss", 1.0, 0)
        writer.add_scalars("acc", {"top1": 1.0}, 0)
        writer.add_histogram("w", torch.zeros(3), 0)
        writer.add_image("img", torch.zeros(3, 4, 4), 0)
        writer.flush()
    writer.close()
    with pytest.raises(AttributeError):
        _ = writer.not_a_writer_method
    assert not (tmp_path / "tb").exists()

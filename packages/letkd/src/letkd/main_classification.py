"""The original entry script: the sacred experiment ``classification_distillation`` (train, evaluate, kmeans, LDA).

Usage (from the folder whose ``./saved_models`` and ``./experiments`` the configs should use)::

    python main_classification.py with config=CIFAR100.resnetv1.RN56_RN20.letKD-1            # train letKD-1
    python main_classification.py with config=CIFAR100.resnetv1.RN56_RN20.letKD-1 evaluate=True
    python main_classification.py with config=CIFAR100.resnetv1.RN56 kmeans=4096             # penultimate targets
    python main_classification.py with config=CIFAR100.resnetv1.RN56 LDA=5                   # intermediate targets

Every sacred command and option works (``print_config``, ``-F <dir>``, ``-l``, ``help``, ...). Differences from the
original, none of which changes numerics: configs also resolve after installation (`letkd.configs`); ``LDA=`` pools
the features 2×2 when the teacher config is a ``downscale`` one (the original hard-coded no pooling although its
``*_downscale`` files were made with it); sub-class files are found under either spelling (`letkd.precomputed`);
``cuda=True`` falls back to the CPU when CUDA is missing; bad input ends with one line and exit status 2.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from sacred import SETTINGS, Experiment
from sacred.utils import apply_backspaces_and_linefeeds

from kdrepro_shared.errors import KdReproError
from kdrepro_shared.plain import to_plain
from letkd import distillation
from letkd.configs import load_config
from letkd.distillation.algorithms.classification import (
    Classification,
    ClassificationQUEST,
    ClassificationQUESTValue,
    ClassificationSubQUESTValue,
)
from letkd.distillation.dataloaders.basic_dataloaders import DataloaderSampler, SimpleDataloader
from letkd.distillation.datasets import dataset_factory
from letkd.precomputed import resolve_subclass_targets

SETTINGS.CAPTURE_MODE = "sys"
EXPERIMENT_NAME = "classification_distillation"
ex = Experiment(EXPERIMENT_NAME)
ex.captured_out_filter = apply_backspaces_and_linefeeds

ALGORITHMS = {
    "quest": ClassificationQUEST,
    "classification": Classification,
    "quest_value": ClassificationQUESTValue,
    "subclass_quest_value": ClassificationSubQUESTValue,
}
# The original's fixed LDA settings; a config may set these keys (the digits demo has 10 classes, so at most 9
# LDA components).
LDA_NUM_COMPONENTS = 60
LDA_NUM_SUBCLASS = 8

ex.add_config(
    {
        "config": "",
        "checkpoint": 0,
        "num_workers": 2,
        "cuda": True,
        "disp_step": 200,
        "localpath": "",
        "evaluate": False,
        "testset": False,  # Tiny-ImageNet only: validate on config['data_val_opt']
        "best": True,
        "kmeans": 0,
        "LDA": 0,  # stage of the teacher: 5 for ResNet, 3 for WRN, 6 for ResNet-50
        "incremental": False,  # the original's sklearn variants for ImageNet
        "fname": None,
        "ksubset": None,
        "data_dir": None,
        "memmap": False,
        "memmap_dir": "./tmp",
    }
)


class _UserErrorFilter(logging.Filter):
    """Drops sacred's "Failed after ...!" line when the run ended on a one-line user error."""

    active = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.active and str(record.msg).startswith("Failed after"))


_USER_ERROR_FILTER = _UserErrorFilter()
logging.getLogger(EXPERIMENT_NAME).addFilter(_USER_ERROR_FILTER)


def experiment_directory(config_name: str, localpath: str, kmeans: int, lda: int) -> str:
    """``<localpath or ./experiments>[/VQ][/LDA]/<config name with dots as folders>``."""
    base = localpath if localpath else os.path.join(distillation.project_root, "experiments")  # noqa: PTH118
    if kmeans > 0:
        base = os.path.join(base, "VQ")  # noqa: PTH118
    if lda > 0:
        base = os.path.join(base, "LDA")  # noqa: PTH118
    return os.path.join(base, config_name.replace(".", "/"))  # noqa: PTH118


def select_algorithm(config: dict[str, Any], kmeans: int, lda: int) -> type:
    """The algorithm class, in the original's order: kmeans forces QuEST, LDA forces plain classification."""
    algorithm_type = config.get("algorithm_type")
    if algorithm_type == "quest" or kmeans > 0:
        return ClassificationQUEST
    if algorithm_type == "classification" or lda > 0:
        return Classification
    if algorithm_type in ALGORITHMS:
        return ALGORITHMS[algorithm_type]
    raise KdReproError(
        f"config algorithm_type {algorithm_type!r} is not one of {', '.join(ALGORITHMS)} (the original only runs such "
        f"a config with kmeans=K or LDA=stage)"
    )


def offline_loader(data_train_opt: dict[str, Any], num_workers: int, ksubset: int | None) -> SimpleDataloader:
    """The un-augmented train set in order, or a shuffled random subset of `ksubset` images (drop_last)."""
    dataset = dataset_factory(
        dataset_name=data_train_opt["dataset_name"],
        **{**data_train_opt["dataset_args"], "do_not_use_random_transf": True},
    )
    if ksubset is not None and not isinstance(ksubset, int):
        raise KdReproError(f"ksubset must be an int number of images or None, got {ksubset!r}")
    return SimpleDataloader(
        dataset=dataset,
        batch_size=data_train_opt["batch_size"],
        num_workers=num_workers,
        epoch_size=ksubset,
        train=ksubset is not None,
    )


def run_lda(algorithm: Any, config: dict[str, Any], loader: SimpleDataloader, lda: int) -> dict[str, str]:
    """The sub-class pipeline at teacher stage `lda`, pooled 2×2 for ``downscale`` teacher configs."""
    teacher_opt = config["networks"]["student_net"]["opt"]
    return algorithm.apply_sublass(
        dataloader=loader,
        num_components=config.get("lda_num_components", LDA_NUM_COMPONENTS),
        num_subclass=config.get("lda_num_subclass", LDA_NUM_SUBCLASS),
        which_stages=lda,
        directory=config["exp_dir"],
        visualize=False,
        downscale=bool(teacher_opt.get("downscale", False)),
    )


def train_loader(config: dict[str, Any], dataset_train_args: dict[str, Any], num_workers: int) -> Any:
    """The augmented train loader (or the sampler-driven one for ``use_ds_dataloader`` configs)."""
    data_train_opt = config["data_train_opt"]
    dataset = dataset_factory(dataset_name=data_train_opt["dataset_name"], **dataset_train_args)
    if config.get("use_ds_dataloader", False):
        return DataloaderSampler(
            dataset=dataset, batch_size=data_train_opt["batch_size"], num_workers=num_workers, train=True
        )
    return SimpleDataloader(
        dataset=dataset,
        batch_size=data_train_opt["batch_size"],
        num_workers=num_workers,
        epoch_size=data_train_opt["epoch_size"],
        train=True,
    )


def run_experiment(options: dict[str, Any], _run: Any, _log: logging.Logger) -> dict[str, Any]:
    """The original `main_experiment`: resolve the config, build data and algorithm, run the selected mode."""
    config_name, kmeans, lda = options["config"], options["kmeans"], options["LDA"]
    if options["incremental"]:
        raise KdReproError("incremental=True (the original's sklearn variants for ImageNet) is not reproduced")
    exp_directory = experiment_directory(config_name, options["localpath"], kmeans, lda)
    print(f"Launching experiment: {config_name}")
    config = load_config(config_name)
    _run.meta_info["container_name"] = os.environ.get("CONTAINER_NAME", "no name")
    _run.meta_info["config_loaded"] = to_plain(config)
    config["exp_dir"] = exp_directory
    print(f"Loading experiment {config} from file: {config_name}")
    print(f"Generated logs, snapshots, and model files will be stored on {config['exp_dir']}")

    data_train_opt, data_test_opt = config["data_train_opt"], config["data_test_opt"]
    dataset_train_args, dataset_test_args = data_train_opt["dataset_args"], data_test_opt["dataset_args"]
    if options["data_dir"] is not None:
        dataset_train_args["data_dir"] = options["data_dir"]
        dataset_test_args["data_dir"] = options["data_dir"]
    batch_size_test = data_test_opt.get("batch_size", data_train_opt["batch_size"])
    if options["testset"] and "data_val_opt" not in config:
        raise KdReproError(f"testset=True needs a 'data_val_opt' entry in config {config_name} (Tiny-ImageNet only)")
    num_workers = options["num_workers"]
    dataset_test = dataset_factory(dataset_name=data_test_opt["dataset_name"], **dataset_test_args)
    dloader_test = SimpleDataloader(
        dataset=dataset_test, batch_size=batch_size_test, num_workers=num_workers, train=False
    )
    config["disp_step"] = options["disp_step"]

    algorithm_class = select_algorithm(config, kmeans, lda)
    for configured, used in resolve_subclass_targets(config):
        _log.info(f"==> {configured} not found: using {used} (the name the LDA= run writes)")
    algorithm = algorithm_class(config, _run, _log)
    try:
        if options["cuda"]:
            algorithm.load_to_gpu()
        return run_mode(algorithm, config, options, dloader_test, num_workers)
    finally:
        algorithm.close()


def run_mode(
    algorithm: Any, config: dict[str, Any], options: dict[str, Any], dloader_test: Any, num_workers: int
) -> dict[str, Any]:
    """Evaluate, run an offline step, or train (resuming with `checkpoint`); return a plain summary."""
    if options["evaluate"]:
        algorithm.load_checkpoint(epoch="*", train=False, suffix=".best" if options["best"] else "")
        stats = algorithm.evaluate(dloader_test, use_tensorboard=False)
        return to_plain({"mode": "evaluate", "epoch": algorithm.curr_epoch, "results": stats.average()})
    if options["LDA"] > 0:
        algorithm.load_checkpoint(epoch="*", train=False, suffix="")
        loader = offline_loader(config["data_train_opt"], num_workers, options["ksubset"])
        return {"mode": "LDA", "files": run_lda(algorithm, config, loader, options["LDA"])}
    if options["kmeans"] > 0:
        algorithm.load_checkpoint(epoch="*", train=False, suffix="")
        loader = offline_loader(config["data_train_opt"], num_workers, options["ksubset"])
        path = algorithm.apply_kmeans_to_dataset(
            dataloader=loader,
            num_embeddings=options["kmeans"],
            feature_name=options["fname"],
            memmap=options["memmap"],
            memmap_dir=options["memmap_dir"],
        )
        return {"mode": "kmeans", "file": path}
    checkpoint = options["checkpoint"]
    if checkpoint != 0:
        algorithm.load_checkpoint(epoch=checkpoint if checkpoint > 0 else "*", train=True)
    dloader_train = train_loader(config, config["data_train_opt"]["dataset_args"], num_workers)
    if options["testset"]:
        data_val_opt = config["data_val_opt"]
        dataset_val = dataset_factory(dataset_name=data_val_opt["dataset_name"], **data_val_opt["dataset_args"])
        dloader_test = SimpleDataloader(
            dataset=dataset_val,
            batch_size=config["data_test_opt"].get("batch_size", config["data_train_opt"]["batch_size"]),
            num_workers=num_workers,
            train=False,
        )
    return to_plain({"mode": "train", **algorithm.solve(dloader_train, dloader_test)})


@ex.main
def main_experiment(  # noqa: PLR0917 - sacred injects each config entry by name
    config: str,
    checkpoint: int,
    num_workers: int,
    cuda: bool,
    disp_step: int,
    localpath: str,
    evaluate: bool,
    testset: bool,
    best: bool,
    kmeans: int,
    LDA: int,  # noqa: N803 - the original config key
    incremental: bool,
    fname: Any,
    ksubset: int | None,
    data_dir: str | None,
    memmap: bool,
    memmap_dir: str,
    _run: Any,
    _log: logging.Logger,
) -> dict[str, Any]:
    """Run one experiment; a user error (bad config name, missing file, ...) ends with one line and status 2."""
    options = {key: value for key, value in locals().items() if not key.startswith("_")}
    try:
        return run_experiment(options, _run, _log)
    except KdReproError as err:
        _USER_ERROR_FILTER.active = True
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: Sequence[str] | None = None) -> Any:
    """Run the sacred command line (``argv`` like ``sys.argv``; default: the real one) and return the Run."""
    _USER_ERROR_FILTER.active = False
    return ex.run_commandline(list(argv) if argv is not None else None)


if __name__ == "__main__":
    main()

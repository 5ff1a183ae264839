"""The generic training/evaluation engine of the original (`distillation.algorithms.algorithm.Algorithm`).

It builds the networks, optimizers and criterions a config names, runs the epoch loop with the learning-rate
look-up tables, evaluates on the test loader after every epoch, keeps the best epoch (by test `AccuracyTop1`, as
the original does), and writes the original checkpoint files into the experiment folder:
`<key>_net_epoch<N>` = {'epoch', 'network', 'metric'} and `<key>_optim_epoch<N>` = {'epoch', 'optimizer'},
plus the `.best` copies. Subclasses define `train_step` and `evaluation_step`.
"""

from __future__ import annotations

import abc
import datetime
import glob
import logging
import pathlib
import re
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from kdrepro_shared.checkpoints import io as ckpt_io
from kdrepro_shared.device import resolve_device
from kdrepro_shared.errors import CheckpointError, KdReproError
from kdrepro_shared.logging import create_summary_writer
from letkd.distillation import architectures, criterions, utils
from letkd.distillation.architectures.pretrained import load_pretrained
from letkd.distillation.architectures.tools import split_network

# Names the original's `.best` files pickle for their numpy.float64 metric (numpy 1.x spelled the module
# `numpy.core`); allow-listing them lets those files load with weights_only=True.
_NUMPY_SCALAR_GLOBALS = [
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
    np._core.multiarray.scalar,
    np.dtype,
    np.dtypes.Float64DType,
]
_SPLIT_NETWORKS = {
    "student_net": ("feature_extractor", "classifier"),
    "teacher_net": ("feature_extractor_target", "classifier_target"),
}
_OPTIMIZERS = ("sgd", "adam")


def load_checkpoint_file(path: str | pathlib.Path) -> Any:
    """Load a checkpoint written by this code or by the original (CUDA-saved tensors land on the CPU)."""
    with torch.serialization.safe_globals(_NUMPY_SCALAR_GLOBALS):
        return ckpt_io.load(path)


def _plain_metric(metric: Any) -> Any:
    """A numpy scalar metric as a python number, so the saved `.best` file loads with weights_only=True."""
    return metric.item() if isinstance(metric, np.generic | np.ndarray) else metric


def _missing_pretrained_hint(key: str, pattern: str) -> str | None:
    """The command that produces the missing pretrained file of network `key` (teacher files get theirs from
    `architectures.pretrained`)."""
    if key != "vector_quantizer_target":
        return None
    parts = pathlib.PurePath(pattern).parts
    config = ".".join(parts[parts.index("VQ") + 1 : -1]) if "VQ" in parts[:-1] else "<teacher config>"
    return f"make the k-means target with `python main_classification.py with config={config} kmeans=4096`"


class Algorithm(abc.ABC):
    """Base of the classification algorithms: `Cls(opt, _run=None, _log=None)` with `opt` a config dict whose
    `exp_dir` (and `disp_step`) the caller has filled in; `_run`/`_log` are sacred's run and logger (optional)."""

    def __init__(self, opt: dict[str, Any], _run: Any = None, _log: logging.Logger | None = None) -> None:
        self.set_experiment_dir(pathlib.Path(opt["exp_dir"]))
        self.exp_name = self.exp_dir.name
        self.set_log_file_handler(_log)
        self.logger.info(f"Algorithm options {opt}")
        self.opt = opt
        self._run = _run
        self.init_all_networks()
        self.init_all_criterions()
        self.allocate_tensors()
        self.curr_epoch: int | str = 0
        self.optimizers: dict[str, torch.optim.Optimizer | None] = {}
        self.device = torch.device("cpu")
        self.keep_best_model_metric_name = opt.get("best_metric")
        self.init_record_of_best_model()
        self.last_stats: utils.DAverageMeter | None = None

    # ---- experiment folder and logging -------------------------------------------------------------------------
    def set_experiment_dir(self, directory_path: pathlib.Path) -> None:
        """Create the experiment folder and its (unused, kept for layout parity) `visuals/` and `preds/`."""
        self.exp_dir = directory_path
        self.vis_dir = directory_path / "visuals"
        self.preds_dir = directory_path / "preds"
        for folder in (self.exp_dir, self.vis_dir, self.preds_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def set_log_file_handler(self, _log: logging.Logger | None = None) -> None:
        """Log to sacred's logger (or this module's, with a console handler) and to `logs/LOG_INFO_<time>.txt`;
        open the TensorBoard writer on `logs/TENSORBOARD`."""
        if _log is not None:
            self.logger = _log
        else:
            self.logger = logging.getLogger(__name__)
            if not any(type(handler) is logging.StreamHandler for handler in self.logger.handlers):
                console = logging.StreamHandler()
                console.setFormatter(logging.Formatter("%(asctime)s - %(name)-8s - %(levelname)-6s - %(message)s"))
                self.logger.addHandler(console)
            self.logger.setLevel(logging.INFO)
        log_dir = self.exp_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        now = str(datetime.datetime.now()).replace(" ", "_").replace("-", "").replace(":", "")
        self.log_file = log_dir / f"LOG_INFO_{now}.txt"
        self.log_fileHandler = logging.FileHandler(self.log_file)
        self.logger.addHandler(self.log_fileHandler)
        tensorboard_dir = log_dir / "TENSORBOARD"
        self.tensorboard_writer = create_summary_writer(tensorboard_dir)
        self.logger.info(f"==> Tensorboard file location: {tensorboard_dir}")

    def close(self) -> None:
        """Detach the log file handler and close the TensorBoard writer (the original left both open)."""
        self.logger.removeHandler(self.log_fileHandler)
        self.log_fileHandler.close()
        self.tensorboard_writer.close()

    # ---- networks, optimizers, criterions ----------------------------------------------------------------------
    def init_all_networks(self) -> None:
        """Build every network of `opt['networks']` in config order; student/teacher are split into fe + clf."""
        self.networks: dict[str, nn.Module] = {}
        self.optim_params: dict[str, dict[str, Any] | None] = {}
        for key, val in self.opt["networks"].items():
            self.logger.info(f"Set network {key}")
            built = self.init_network(
                val["def_file"], val["opt"], val.get("pretrained"), key, force=val.get("force", False)
            )
            optim_params = val.get("optim_params")
            if key in _SPLIT_NETWORKS:
                fe_key, clf_key = _SPLIT_NETWORKS[key]
                self.networks[fe_key], self.networks[clf_key] = built
                self.optim_params[fe_key] = optim_params
                self.optim_params[clf_key] = None if optim_params is None else optim_params.get("classifier_optim")
            else:
                self.networks[key] = built
                self.optim_params[key] = optim_params

    def init_network(
        self, net_def_file: str, net_opt: dict[str, Any], pretrained_path: Any, key: str, force: bool = False
    ) -> Any:
        """Build `architectures.factory(<def_file>, opt)`, load `pretrained` into the full model, and split the
        student/teacher into `[feature_extractor, classifier]` Sequentials."""
        self.logger.info(f"==> Initiliaze network {key} from file {net_def_file} with opts: {net_opt}")
        architecture_name = pathlib.PurePath(net_def_file).name.split(".py")[0]
        network = architectures.factory(architecture_name=architecture_name, opt=net_opt)
        self.logger.info("==> Network architecture:")
        self.logger.info(network)
        if isinstance(pretrained_path, str):
            self.load_pretrained(network, pretrained_path, key, force=force)
        if key not in _SPLIT_NETWORKS:
            return network
        split = list(split_network(network, net_opt["extract_from"], net_opt["extract_after_relu"]))
        if isinstance(pretrained_path, list | tuple):
            for part, path in zip(split, pretrained_path, strict=True):
                self.load_pretrained(part, path, key, force=force)
        return split

    def load_pretrained(self, network: nn.Module, pretrained_path: str, key: str, force: bool = False) -> None:
        """Load the last file matching the glob `pretrained_path` into `network` with strict keys (see
        `architectures.pretrained`); a missing file names the command that makes it."""
        loaded = load_pretrained(
            network, pretrained_path, force=force, missing_hint=_missing_pretrained_hint(key, pretrained_path)
        )
        self.logger.info(f"==> Load pretrained parameters from file {loaded}:")

    def init_all_optimizers(self) -> None:
        """One optimizer per network that has `optim_params`; None for the frozen ones."""
        self.optimizers = {
            key: None if oparams is None else self.init_optimizer(self.networks[key], oparams, key)
            for key, oparams in self.optim_params.items()
        }

    def init_optimizer(self, net: nn.Module, optim_opts: dict[str, Any], key: str) -> torch.optim.Optimizer:
        """SGD (momentum, optional nesterov, weight decay on all params) or Adam over the trainable params."""
        optim_type = optim_opts["optim_type"]
        parameters = [param for param in net.parameters() if param.requires_grad]
        self.logger.info(f"Initialize optimizer: {optim_type} with params: {optim_opts} for netwotk: {key}")
        if optim_type == "sgd":
            return torch.optim.SGD(
                parameters,
                lr=optim_opts["lr"],
                momentum=optim_opts["momentum"],
                nesterov=optim_opts.get("nesterov", False),
                weight_decay=optim_opts["weight_decay"],
            )
        if optim_type == "adam":
            return torch.optim.Adam(
                parameters,
                lr=optim_opts["lr"],
                betas=optim_opts["beta"],
                weight_decay=optim_opts.get("weight_decay", 0.0),
            )
        raise KdReproError(
            f"network {key!r}: optim_type {optim_type!r} is not supported; valid: {', '.join(_OPTIMIZERS)}"
        )

    def init_all_criterions(self) -> None:
        """Build `opt['criterions']` (the letKD steps compute their losses directly; these are kept for parity)."""
        self.criterions: dict[str, nn.Module] = {}
        for key, val in (self.opt.get("criterions") or {}).items():
            crit_type, crit_opt = val["ctype"], val.get("opt")
            self.logger.info(f"Initialize criterion[{key}]: {crit_type} with options: {crit_opt}")
            self.criterions[key] = self.init_criterion(crit_type, crit_opt)

    def init_criterion(self, ctype: str, copt: Any) -> nn.Module:
        """A criterion module of this package (`KD`, `subclass_loss`) or a `torch.nn` loss class by name."""
        if ctype in criterions.CRITERIONS:
            return criterions.factory(criterion_name=ctype, opt=copt)
        loss_class = getattr(nn, ctype, None)
        if not (isinstance(loss_class, type) and issubclass(loss_class, nn.Module)):
            raise KdReproError(
                f"criterion type {ctype!r} is neither one of {', '.join(criterions.CRITERIONS)} nor a torch.nn loss"
            )
        return loss_class() if copt is None else loss_class(copt)

    def load_to_gpu(self) -> None:
        """Move to CUDA when it is available (the `cuda=True` default); on a CPU-only machine stay on the CPU."""
        device = resolve_device("auto")
        if device.type != "cuda":
            self.logger.info("==> CUDA is not available: running on the CPU")
        self.load_to_device(device)

    def load_to_device(self, device: str | torch.device) -> None:
        """Move the criterions, the tensor buffers and the networks to `device`."""
        self.device = torch.device(device)
        self.logger.info(f"==> Loading criterions, tensors and networks to device: {self.device}")
        self.criterions = {key: criterion.to(self.device) for key, criterion in self.criterions.items()}
        self.tensors = {key: tensor.to(self.device) for key, tensor in self.tensors.items()}
        self.networks = {key: net.to(self.device) for key, net in self.networks.items()}

    # ---- checkpoints -------------------------------------------------------------------------------------------
    def _get_net_checkpoint_filename(self, net_key: str, epoch: int | str) -> str:
        return str(self.exp_dir / f"{net_key}_net_epoch{epoch}")

    def _get_optim_checkpoint_filename(self, net_key: str, epoch: int | str) -> str:
        return str(self.exp_dir / f"{net_key}_optim_epoch{epoch}")

    def _trained_keys(self) -> list[str]:
        return [key for key in self.networks if self.optimizers.get(key) is not None]

    def save_checkpoint(self, epoch: int, suffix: str = "", metric: Any = None) -> None:
        """Write the net and optimizer files of every trained network for `epoch` (atomically)."""
        for key in self._trained_keys():
            self.save_network(key, epoch, suffix=suffix, metric=metric)
            self.save_optimizer(key, epoch, suffix=suffix)

    def save_network(self, net_key: str, epoch: int, suffix: str = "", metric: Any = None) -> None:
        """`<key>_net_epoch<N><suffix>` = {'epoch': N, 'network': state_dict, 'metric': metric}."""
        state = {"epoch": epoch, "network": self.networks[net_key].state_dict(), "metric": _plain_metric(metric)}
        ckpt_io.save(self._get_net_checkpoint_filename(net_key, epoch) + suffix, state, meta=False)

    def save_optimizer(self, net_key: str, epoch: int, suffix: str = "") -> None:
        """`<key>_optim_epoch<N><suffix>` = {'epoch': N, 'optimizer': optimizer state_dict}."""
        state = {"epoch": epoch, "optimizer": self.optimizers[net_key].state_dict()}
        ckpt_io.save(self._get_optim_checkpoint_filename(net_key, epoch) + suffix, state, meta=False)

    def delete_checkpoint(self, epoch: int, suffix: str = "") -> None:
        """Remove the net and optimizer files of `epoch` (those that exist)."""
        for key in self._trained_keys():
            for name in (
                self._get_net_checkpoint_filename(key, epoch),
                self._get_optim_checkpoint_filename(key, epoch),
            ):
                pathlib.Path(name + suffix).unlink(missing_ok=True)

    def find_most_recent_epoch(self, key: str, suffix: str) -> int:
        """The largest integer N with a `<key>_net_epoch<N><suffix>` file in the experiment folder."""
        prefix = f"{key}_net_epoch"
        pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix))
        epochs = sorted(
            int(found.group(1))
            for path in self.exp_dir.glob(glob.escape(prefix) + "*")
            if (found := pattern.fullmatch(path.name))
        )
        if not epochs:
            raise CheckpointError(
                f"no checkpoint {self.exp_dir / (prefix + '<N>' + suffix)} found; train this config first "
                f"(checkpoint=0) or check localpath/config"
            )
        self.logger.info(f"Load checkpoint of most recent epoch {epochs[-1]}")
        return epochs[-1]

    def load_checkpoint(self, epoch: int | str, train: bool = True, suffix: str = "") -> None:
        """Load epoch `epoch` (`'*'` = the most recent) of every trainable network, and with `train` its optimizer.

        As in the original, the epoch found for the first trainable network is used for all, and a config with no
        trainable network leaves `curr_epoch` at `'*'` (the k-means file name relies on it).
        """
        self.logger.info(f"Load checkpoint of epoch {epoch}")
        trainable = [key for key in self.networks if self.optim_params[key] is not None]
        for key in trainable:
            if epoch == "*":
                epoch = self.find_most_recent_epoch(key, suffix)
            self.load_network(key, epoch, suffix)
        if train:
            self.init_all_optimizers()
            for key in trainable:
                self.load_optimizer(key, epoch, suffix)
        self.curr_epoch = epoch

    def _checkpoint_path(self, filename: str) -> pathlib.Path:
        path = pathlib.Path(filename)
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} does not exist; train this config first or pick another epoch")
        return path

    def load_network(self, net_key: str, epoch: int | str, suffix: str = "") -> None:
        """Load `<key>_net_epoch<N><suffix>` strictly into network `net_key`."""
        path = self._checkpoint_path(self._get_net_checkpoint_filename(net_key, epoch) + suffix)
        self.logger.info(f"Loading {path} for network {net_key}")
        self.networks[net_key].load_state_dict(load_checkpoint_file(path)["network"])

    def load_optimizer(self, net_key: str, epoch: int | str, suffix: str = "") -> None:
        """Load `<key>_optim_epoch<N><suffix>` into the optimizer of `net_key`."""
        path = self._checkpoint_path(self._get_optim_checkpoint_filename(net_key, epoch) + suffix)
        self.optimizers[net_key].load_state_dict(load_checkpoint_file(path)["optimizer"])

    # ---- training and evaluation -------------------------------------------------------------------------------
    def solve(self, data_loader_train: Any, data_loader_test: Any = None) -> dict[str, Any]:
        """Train from `curr_epoch` to `max_num_epochs`, checkpointing and evaluating after every epoch.

        Returns the last and the best (test-selected, as in the original) epochs and their evaluation averages.
        """
        self.max_num_epochs = self.opt["max_num_epochs"]
        start_epoch = self.curr_epoch
        if len(self.optimizers) == 0:
            self.init_all_optimizers()
        self.init_record_of_best_model()
        for epoch in range(start_epoch, self.max_num_epochs):
            self.curr_epoch = epoch
            self.logger.info(f"Training epoch [{epoch + 1:3d} / {self.max_num_epochs:3d}]")
            self.adjust_learning_rates(self.curr_epoch)
            train_stats = self.run_train_epoch(data_loader_train, self.curr_epoch)
            self.logger.info(f"==> Training stats: {train_stats}")
            self.save_checkpoint(self.curr_epoch + 1)
            if start_epoch != self.curr_epoch:
                self.delete_checkpoint(self.curr_epoch)
            if isinstance(data_loader_test, list | tuple):
                for index, loader in enumerate(data_loader_test):
                    self.logger.info(f"==> Evaluation stats: {self.evaluate(loader, idx=index)}")
            elif data_loader_test is not None:
                eval_stats = self.evaluate(data_loader_test)
                self.logger.info(f"==> Evaluation stats: {eval_stats}")
                self.last_stats = eval_stats
                self.keep_record_of_best_model(eval_stats, self.curr_epoch)
            self.print_eval_stats_of_best_model()
        return self.report_last_and_best()

    def run_train_epoch(self, data_loader: Any, epoch: int) -> utils.DAverageMeter:
        """One pass over `data_loader(epoch)`: frozen networks in eval mode, trained ones in train mode."""
        self.logger.info(f"Training: {self.exp_name}")
        self.dloader = data_loader
        self.dataset_train = data_loader.dataset
        for key, network in self.networks.items():
            network.train(self.optimizers[key] is not None)
        self.logger.info(f"==> Dataset: {getattr(data_loader.dataset, 'name', '')} [{len(data_loader)} batches]")
        disp_step = self.opt.get("disp_step", 50)
        train_stats = utils.DAverageMeter("train", self._run)
        self.bnumber = len(data_loader)
        for idx, batch in enumerate(tqdm(data_loader(epoch), desc=f"train epoch {epoch + 1}", leave=False)):
            self.biter = idx
            self.global_iter = self.curr_epoch * len(data_loader) + idx
            train_stats.update(self.train_step(batch))
            if (idx + 1) % disp_step == 0:
                self.logger.info(f"==> Iteration [{epoch + 1:3d}][{idx + 1:4d} / {len(data_loader):4d}]: {train_stats}")
        train_stats.log()
        self.add_stats_to_tensorboard_writer(train_stats.average(), "train_")
        return train_stats

    def evaluate(self, dloader: Any, idx: int | None = None, use_tensorboard: bool = True) -> utils.DAverageMeter:
        """Average `evaluation_step` over the loader with every network in eval mode; log `test_*` to TensorBoard."""
        self.logger.info(f"Evaluating: {self.exp_name}")
        self.dloader = dloader
        self.dataset_eval = dloader.dataset
        self.logger.info(f"==> Dataset: {getattr(dloader.dataset, 'name', '')} [{len(dloader)} batches]")
        for network in self.networks.values():
            network.eval()
        eval_stats = utils.DAverageMeter("eval" if idx is None else f"eval_{idx}", self._run)
        self.bnumber = len(dloader)
        for batch_idx, batch in enumerate(tqdm(dloader(), desc="evaluate", leave=False)):
            self.biter = batch_idx
            eval_stats.update(self.evaluation_step(batch))
        self.logger.info(f"==> Results: {eval_stats}")
        eval_stats.log()
        if use_tensorboard:
            self.add_stats_to_tensorboard_writer(eval_stats.average(), "test_")
        return eval_stats

    def add_stats_to_tensorboard_writer(self, stats: dict[str, Any], prefix: str) -> None:
        """Scalars `<prefix><key>` at global step = the 0-based epoch (nested dicts extend the prefix)."""
        for key, value in stats.items():
            if isinstance(value, dict):
                self.add_stats_to_tensorboard_writer(value, f"{prefix}{key}_")
            else:
                self.tensorboard_writer.add_scalar(prefix + key, value, self.curr_epoch)

    def adjust_learning_rates(self, epoch: int) -> None:
        """Set each optimizer's lr to the first `LUT_lr` entry whose epoch bound exceeds `epoch` (else the last)."""
        for key, oparams in self.optim_params.items():
            if oparams is None or "LUT_lr" not in oparams:
                continue
            lut = oparams["LUT_lr"]
            lr = next((lr for max_epoch, lr in lut if max_epoch > epoch), lut[-1][1])
            self.logger.info(f"==> Set to {key} optimizer lr = {lr:.10f}")
            for param_group in self.optimizers[key].param_groups:
                param_group["lr"] = lr

    # ---- best model --------------------------------------------------------------------------------------------
    def init_record_of_best_model(self) -> None:
        """Forget the best epoch (the original does this at every `solve`, so a resumed run restarts it)."""
        self.max_metric_val = None
        self.best_stats: utils.DAverageMeter | None = None
        self.best_epoch: int | None = None

    def keep_record_of_best_model(self, eval_stats: utils.DAverageMeter, current_epoch: int) -> None:
        """On a strict improvement of the test metric, write the `.best` files and drop the previous best ones."""
        metric_name = self.keep_best_model_metric_name
        if metric_name is None:
            return
        if metric_name not in eval_stats.values:
            raise KdReproError(f"the best-model metric {metric_name!r} is not computed by the evaluation step")
        metric_val = eval_stats.average()[metric_name]
        if self.max_metric_val is not None and metric_val <= self.max_metric_val:
            return
        self.max_metric_val = metric_val
        self.best_stats = eval_stats
        self.save_checkpoint(self.curr_epoch + 1, suffix=".best", metric=self.max_metric_val)
        if self.best_epoch is not None:
            self.delete_checkpoint(self.best_epoch + 1, suffix=".best")
        self.best_epoch = current_epoch
        self.print_eval_stats_of_best_model()

    def print_eval_stats_of_best_model(self) -> None:
        """Log the best epoch (1-based) and its evaluation averages."""
        if self.best_stats is not None:
            self.logger.info(
                f"==> Best results w.r.t. {self.keep_best_model_metric_name} metric: "
                f"epoch: {self.best_epoch + 1} - {self.best_stats}"
            )

    def report_last_and_best(self) -> dict[str, Any]:
        """Log and return both the last epoch's and the best epoch's test averages (the best is chosen on the test
        set, as in the original; papers comparing last-epoch numbers need the former)."""
        report = {
            "last_epoch": self.curr_epoch + 1 if isinstance(self.curr_epoch, int) else None,
            "last": None if self.last_stats is None else self.last_stats.average(),
            "best_epoch": None if self.best_epoch is None else self.best_epoch + 1,
            "best": None if self.best_stats is None else self.best_stats.average(),
        }
        if self.last_stats is not None:
            self.logger.info(f"==> Last epoch {report['last_epoch']} results: {self.last_stats}")
        self.print_eval_stats_of_best_model()
        return report

    def optimizer_zero_grad(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Zero the gradients of `optimizer` when there is one."""
        if optimizer is not None:
            optimizer.zero_grad()

    def optimizer_step(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Step `optimizer` when there is one."""
        if optimizer is not None:
            optimizer.step()

    # ---- defined by the subclasses -----------------------------------------------------------------------------
    def allocate_tensors(self) -> None:
        """Buffers the steps copy each batch into (moved by `load_to_device`); none by default."""
        self.tensors: dict[str, torch.Tensor] = {}

    @abc.abstractmethod
    def train_step(self, batch: Any) -> dict[str, Any]:
        """Forward, losses, backward and optimizer steps on one batch; returns the record of scalars."""

    @abc.abstractmethod
    def evaluation_step(self, batch: Any) -> dict[str, Any]:
        """Forward and metrics on one batch without updates; returns the record of scalars."""

"""`download_cifar100_teacher.py`: the six RepDistiller CIFAR-100 teachers into `./saved_models/<arch>_vanilla/`.

The original fetched `ckpt_epoch_240.pth` from shape2prog.csail.mit.edu, which is gone. Each teacher is fetched
through the shared registry (`repdistiller/<arch>_vanilla`, its mirrors first); when none answers, the file is taken
from the registered archive of all teachers (`repdistiller/cifar_teachers_tar`, cached in the kd-repro home). When
neither works (or offline), the one-line error says which file to place where and the links to get it by hand.
"""

from __future__ import annotations

import argparse
import tarfile
from collections.abc import Sequence
from pathlib import Path

from kdrepro_shared.checkpoints import Artifact, fetch, get_artifact, load
from kdrepro_shared.errors import CheckpointError, DownloadError, exit_on_user_error

TEACHERS = ("wrn_40_2", "resnet56", "resnet110", "resnet32x4", "vgg13", "ResNet50")
ARCHIVE = "repdistiller/cifar_teachers_tar"
DEFAULT_DEST = Path("saved_models")


def teacher_artifact(name: str) -> Artifact:
    """The registry entry of one teacher, e.g. `repdistiller/resnet56_vanilla`."""
    return get_artifact(f"repdistiller/{name}_vanilla")


def _archive_member(archive: Artifact, folder: str, file_name: str) -> str:
    """The archive member holding `<folder>/<file_name>`, from the registry's member list."""
    for member in archive.members:
        if member.endswith(f"/{folder}/{file_name}"):
            return member
    raise CheckpointError(f"{archive.name} lists no member for {folder}/{file_name} (members: {list(archive.members)})")


def _extract(archive_path: Path, member: str, target: Path) -> Path:
    """Copy one member of a tar archive to `target` through a `.part` file, so the target is never half-written."""
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive_path) as tar:
            try:
                source = tar.extractfile(member)
            except KeyError:
                source = None
            if source is None:
                raise CheckpointError(f"{archive_path} has no file {member}: delete it so it is downloaded again")
            with source, part.open("wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
        part.replace(target)
    except tarfile.TarError as err:
        raise CheckpointError(f"{archive_path} is not a readable tar archive ({err}): delete it and rerun") from None
    finally:
        part.unlink(missing_ok=True)
    return target


def _from_archive(artifact: Artifact, target: Path, offline: bool | None, progress: bool, reason: str) -> Path:
    """Take a teacher from the registered archive; if that fails too, one error carrying both reasons."""
    archive = get_artifact(ARCHIVE)
    member = _archive_member(archive, target.parent.name, artifact.file_name)
    try:
        archive_path = fetch(archive, offline=offline, progress=progress)
    except DownloadError as err:
        raise DownloadError(f"{reason}; the archive fallback failed too: {err}") from None
    return _extract(archive_path, member, target)


def _check_checkpoint(artifact: Artifact, path: Path, fresh: bool) -> None:
    """Refuse a file that is not a RepDistiller checkpoint (e.g. an error page), deleting it if this run wrote it."""
    checkpoint = load(path, weights_only=artifact.weights_only)
    missing = [k for k in artifact.expected_keys if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        if fresh:
            path.unlink()
        raise CheckpointError(f"{path} is not a RepDistiller teacher checkpoint: it lacks {missing}")


def download_teacher(
    name: str, dest: Path = DEFAULT_DEST, *, offline: bool | None = None, progress: bool = True
) -> Path:
    """`<dest>/<name>_vanilla/ckpt_epoch_240.pth`, downloaded unless it is already there, and checked."""
    artifact = teacher_artifact(name)
    target = dest / f"{name}_vanilla" / artifact.file_name
    fresh = not target.is_file()
    try:
        path = fetch(artifact, dest_dir=target.parent, offline=offline, progress=progress)
    except DownloadError as err:
        path = _from_archive(artifact, target, offline, progress, str(err))
    _check_checkpoint(artifact, path, fresh)
    return path


def download_teachers(
    dest: Path = DEFAULT_DEST, *, names: Sequence[str] = TEACHERS, offline: bool | None = None, progress: bool = True
) -> list[Path]:
    """Every teacher in `names`, printing the original's line after each one."""
    paths = []
    for name in names:
        paths.append(download_teacher(name, dest, offline=offline, progress=progress))
        print(f"Downloaded {name}_vanilla/{paths[-1].name} to {dest}/")
    return paths


def _parser() -> argparse.ArgumentParser:
    """Options; with none, the behaviour of the original script."""
    parser = argparse.ArgumentParser(prog="download_cifar100_teacher.py", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="folder for <arch>_vanilla/ (./saved_models)")
    parser.add_argument("--only", nargs="+", choices=TEACHERS, default=list(TEACHERS), help="teachers to fetch")
    parser.add_argument("--offline", action="store_true", default=None, help="never download; say what to place")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; a failure ends with its one-line message and a non-zero status."""
    args = _parser().parse_args(argv)
    download_teachers(args.dest, names=args.only, offline=args.offline, progress=not args.quiet)
    return 0

"""``python -m kdrepro_shared.data``: write the embedded digits dataset, or a tiny fake copy of a dataset layout.

python -m kdrepro_shared.data digits OUT_DIR
python -m kdrepro_shared.data fake {cifar10,cifar100,imagefolder,tinyimagenet,stl10} OUT_DIR [--seed N]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from kdrepro_shared.data.cifar import write_fake_cifar
from kdrepro_shared.data.digits import DIGITS_TEST_SIZE, DIGITS_TRAIN_SIZE, write_digits_cifar100
from kdrepro_shared.data.image_folder import write_fake_image_folder
from kdrepro_shared.data.stl10 import write_fake_stl10
from kdrepro_shared.data.tiny_imagenet import write_fake_tiny_imagenet
from kdrepro_shared.errors import exit_on_user_error

# kind -> (writer(out_dir, seed), the reader call that reads the copy back)
FAKES: dict[str, tuple[Callable[[Path, int], Path], str]] = {
    "cifar10": (lambda out, seed: write_fake_cifar(out, 10, seed=seed), "CIFAR10({out!r})"),
    "cifar100": (lambda out, seed: write_fake_cifar(out, 100, seed=seed), "CIFAR100({out!r})"),
    "imagefolder": (lambda out, seed: write_fake_image_folder(out, seed=seed), "ImageFolder({out!r}, split='train')"),
    "tinyimagenet": (
        lambda out, seed: write_fake_tiny_imagenet(out, seed=seed),
        "TinyImageNet({out!r}, split='train')",
    ),
    "stl10": (lambda out, seed: write_fake_stl10(out, seed=seed), "STL10({out!r}, split='train')"),
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the ``digits`` and ``fake`` sub-commands."""
    parser = argparse.ArgumentParser(prog="python -m kdrepro_shared.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    digits = sub.add_parser("digits", help="write scikit-learn's digits in the CIFAR-100 pickle layout")
    digits.add_argument("out_dir", type=Path)
    fake = sub.add_parser("fake", help="write a tiny copy of random images in a dataset's on-disk layout")
    fake.add_argument("kind", choices=sorted(FAKES))
    fake.add_argument("out_dir", type=Path)
    fake.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Write the requested dataset and print one line saying where and how to read it."""
    args = parse_args(argv)
    out = str(args.out_dir)
    if args.command == "digits":
        folder = write_digits_cifar100(args.out_dir)
        what = f"digits ({DIGITS_TRAIN_SIZE} train / {DIGITS_TEST_SIZE} test, CIFAR-100 layout)"
        reader = f"CIFAR100({out!r})"
    else:
        write, reader = FAKES[args.kind]
        folder, what, reader = write(args.out_dir, args.seed), f"fake {args.kind}", reader.format(out=out)
    print(f"wrote {what} to {folder}; read it with kdrepro_shared.data.{reader}")


if __name__ == "__main__":
    main()

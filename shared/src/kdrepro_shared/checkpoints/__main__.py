"""CLI: `python -m kdrepro_shared.checkpoints list [--paper P] [--markdown]` and `... fetch NAME [--dest-dir D]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kdrepro_shared.checkpoints.download import fetch
from kdrepro_shared.checkpoints.registry import PAPERS, list_artifacts, registry_markdown
from kdrepro_shared.errors import exit_on_user_error


def _parser() -> argparse.ArgumentParser:
    """Argument parser with the `list` and `fetch` subcommands."""
    parser = argparse.ArgumentParser(prog="python -m kdrepro_shared.checkpoints", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list the registered artifacts")
    listing.add_argument("--paper", choices=PAPERS, help="only the artifacts this paper package uses")
    listing.add_argument("--markdown", action="store_true", help="print the markdown table the READMEs embed")
    getting = commands.add_parser("fetch", help="download (or find in the cache) one artifact and print its path")
    getting.add_argument("source", metavar="NAME", help="registered name, URL (http(s), file, gdrive:<id>) or file")
    getting.add_argument("--dest-dir", help="folder to place the file in (default: the kdrepro cache)")
    getting.add_argument("--file-name", help="file name to save under (default: the registered one)")
    getting.add_argument("--sha256", help="expected sha256 (full hex or prefix); overrides the registered one")
    getting.add_argument("--offline", action="store_true", default=None, help="never download; say what to place")
    getting.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _list(paper: str | None, markdown: bool) -> None:
    """Print the registry as a markdown table, or one `name  papers  file  sha256` line per artifact."""
    if markdown:
        sys.stdout.write(registry_markdown(paper))
        return
    for a in list_artifacts(paper):
        print(f"{a.name}\t{','.join(a.paper)}\t{a.file_name}\t{a.sha256 or '-'}")


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; a KdReproError ends it with its one-line message and exit status 2."""
    args = _parser().parse_args(argv)
    if args.command == "list":
        _list(args.paper, args.markdown)
    else:
        path = fetch(
            args.source,
            dest_dir=args.dest_dir,
            file_name=args.file_name,
            sha256=args.sha256,
            offline=args.offline,
            progress=not args.quiet,
        )
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

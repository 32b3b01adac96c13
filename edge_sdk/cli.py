"""`edge-sdk` command line. Each subcommand lives in edge_sdk/commands/<name>.py and exposes
``register(subparsers)``; this module only discovers and dispatches them."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from edge_sdk import commands


class UserError(Exception):
    """An error caused by the user's input (missing file, malformed data); printed without a
    traceback and exits with status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-sdk", description="Industrial visual anomaly detection at the edge: train on good images, "
                                     "export bundles, run and benchmark them.")
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"edge_sdk.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"edge-sdk {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # `python -m edge_sdk.cli`: run the imported module's main, so that the UserError the
    # commands raise (edge_sdk.cli.UserError) is the class caught there, not __main__'s copy.
    from edge_sdk.cli import main as _main

    sys.exit(_main())

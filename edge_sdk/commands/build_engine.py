"""`edge-sdk build-engine`: TensorRT engine(s) from a bundle's ONNX network(s), with manifests."""

from __future__ import annotations

from edge_sdk.cli import bounded_int

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "build-engine",
        help="build TensorRT engines from a bundle's ONNX networks (needs TensorRT and an NVIDIA GPU)",
        description="Builds a strongly typed TensorRT engine for each network of BUNDLE in the chosen "
                    "precision variant and writes it with its manifest (<engine>.json) into "
                    "BUNDLE/engines/ (or --out). Also accepts a single .onnx file. Prints the "
                    "equivalent trtexec command line.")
    p.add_argument("bundle", help="bundle directory, or one .onnx file")
    p.add_argument("--precision", default="fp32", help="network variant: fp32, fp16 or int8 (default fp32)")
    p.add_argument("--profile", default="1,60,64", help="batch sizes MIN,OPT,MAX of the optimization profile")
    p.add_argument("--workspace", type=bounded_int("--workspace", 1, 1 << 20), default=4096, metavar="MIB", help="builder workspace limit (MiB)")
    p.add_argument("--timing-cache", default=None, metavar="FILE",
                   help="timing cache reused across builds (default: engines/timing.cache beside the engines)")
    p.add_argument("--opt-level", type=int, default=3, choices=range(0, 6), help="builder optimization level")
    p.add_argument("--device", type=bounded_int("--device", 0, 63), default=0, help="CUDA device index")
    p.add_argument("--out", default=None, help="folder for engines and manifests (default BUNDLE/engines)")
    p.add_argument("--network", default=None, help="network name for a bare .onnx file (default: file stem)")
    p.add_argument("--verbose", action="store_true", help="TensorRT's verbose log")
    p.set_defaults(func=run)


def _sources(bundle: Path, precision: str, network: str | None):
    """(network name, ONNX path) pairs to build."""
    from edge_sdk.cli import UserError

    if bundle.is_file():
        if bundle.suffix != ".onnx":
            raise UserError(f"{bundle}: expected a bundle directory or an .onnx file")
        return [(network or bundle.name.split(".")[0], bundle)]
    if not bundle.is_dir():
        raise UserError(f"{bundle}: no such bundle directory or .onnx file")
    from edge_sdk.converters import engine_bundle

    try:
        return engine_bundle.network_files(bundle, precision)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def run(args) -> int:
    from edge_sdk.converters import trt_builder as tb
    from edge_sdk.converters.precision import PRECISIONS
    from edge_sdk.cli import UserError

    if args.precision not in PRECISIONS:
        raise UserError(f"--precision: expected one of {', '.join(PRECISIONS)}, got {args.precision!r}")
    if args.precision == "bf16":
        raise UserError("--precision bf16: the bf16 variant is computed by OpenVINO only; TensorRT engines are built "
                        "from the fp32, fp16 or int8 variant")
    try:
        profile = tb.parse_profile(args.profile)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if args.workspace < 1:
        raise UserError(f"--workspace: expected a positive number of MiB, got {args.workspace}")
    bundle = Path(args.bundle)
    sources = _sources(bundle, args.precision, args.network)
    out = Path(args.out) if args.out else (bundle.parent if bundle.is_file() else bundle / "engines")
    cache = Path(args.timing_cache) if args.timing_cache else out / "timing.cache"
    options = tb.BuildOptions(precision=args.precision, profile=profile, workspace_mib=args.workspace,
                              timing_cache=cache, optimization_level=args.opt_level, device_index=args.device)
    try:
        tb.require_tensorrt()
        from edge_sdk.converters import engine_manifest as em

        machine = em.machine_info(args.device)
        if machine.compute_capability is None:
            raise tb.TensorRTUnavailable(f"no CUDA device {args.device} (or no NVIDIA driver) on this machine")
        for name, onnx_path in sources:
            engine = out / tb.engine_file_name(name, args.precision, machine.compute_capability)
            manifest = tb.build_engine(onnx_path, engine, network=name, options=options, verbose=args.verbose)
            print(f"{engine}  ({manifest['builder']['build_seconds']:.1f} s, TensorRT "
                  f"{manifest['tensorrt_version']}, {manifest['gpu']['name']})")
            print(f"  equivalent: {manifest['trtexec']}")
    except (tb.TensorRTUnavailable, tb.EngineBuildError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    return 0

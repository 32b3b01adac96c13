"""`edge-sdk triton BUNDLE... --repo DIR`: a Triton Inference Server model repository of bundles;
`edge-sdk triton serve --repo DIR`: a server on it; `edge-sdk triton load NAME --repo DIR`: roll a
new version out through the server's repository API."""

from __future__ import annotations

import os
from pathlib import Path

from edge_sdk.cli import bounded_int, threads_option


def _batch_list(text: str) -> list[int]:
    import argparse

    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--preferred-batch: expected batch sizes like 4,8, got {text!r}") from None
    if not sizes:
        raise argparse.ArgumentTypeError(f"--preferred-batch: expected batch sizes like 4,8, got {text!r}")
    return sizes


def _gpu_list(text: str) -> list[int]:
    import argparse

    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--gpus: expected GPU indices like 0,1, got {text!r}") from None


def register(sub) -> None:
    from edge_sdk.serving.triton_repo import MAX_BATCH, MAX_INSTANCES, MAX_QUEUE_DELAY_US

    p = sub.add_parser(
        "triton", help="a Triton Inference Server model repository of bundles; 'triton serve' starts a server on it",
        description="BUNDLE...: writes a Triton model repository with one model per bundle (version 1): "
                    "config.pbtxt (uint8 IMAGE input, SCORE / NORMALIZED / VERDICT / VERSION / HEATMAP / region "
                    "outputs, dynamic batching, instances, parameters) and a Python-backend model.py that opens "
                    "edge_sdk.Runtime on the instance's device; the bundle is copied in and verified on load. "
                    "--add-version adds a bundle as the next version of a model instead. "
                    "'edge-sdk triton serve --repo DIR' starts tritonserver on DIR (explicit model control: "
                    "every model loaded at start); 'edge-sdk triton load NAME --http-port P' asks "
                    "that server to load NAME's newest version (the old one is unloaded once its requests "
                    "in flight are done). The server comes from scripts/setup_triton.sh (.venv-triton).")
    p.add_argument("bundles", nargs="+", metavar="BUNDLE",
                   help="bundle directories or archives; or 'serve', or 'load NAME...' (a bundle folder named "
                        "serve or load: write ./serve)")
    p.add_argument("--repo", help="the model repository folder (required, except for load: there it only checks "
                                  "that each NAME is a model of that repository before the server is asked)")
    p.add_argument("--name", action="append", dest="names", metavar="NAME",
                   help="model name of each bundle, in order (default: the bundle folder's name)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing repository written by edge-sdk triton (never another folder)")
    p.add_argument("--add-version", action="store_true",
                   help="add the bundle as the next version of its model in an existing repository (with the serving "
                        "options that model was written with)")
    g = p.add_argument_group("serving options (written into config.pbtxt)")
    g.add_argument("--instances", type=bounded_int("--instances", 1, MAX_INSTANCES), default=1,
                   help="model instances per device (default 1)")
    g.add_argument("--kind", choices=("cpu", "gpu"), default="cpu",
                   help="instance kind: cpu (KIND_CPU, default) or gpu (KIND_GPU: instance on GPU N runs cuda:N)")
    g.add_argument("--gpus", type=_gpu_list, default=[], help="with --kind gpu: the GPUs, e.g. 0,1 (default all)")
    g.add_argument("--max-batch", type=bounded_int("--max-batch", 1, MAX_BATCH), default=8,
                   help="Triton's max_batch_size and the runtime's network batch (default 8)")
    g.add_argument("--preferred-batch", type=_batch_list, default=None, metavar="SIZES",
                   help="dynamic batching's preferred batch sizes, e.g. 4,8 (default: from the bundle's TensorRT "
                        "engine profiles, else 4, 8, ... up to --max-batch)")
    g.add_argument("--queue-delay-us", type=bounded_int("--queue-delay-us", 0, MAX_QUEUE_DELAY_US), default=500,
                   help="dynamic batching's max queue delay in microseconds (default 500)")
    g.add_argument("--threads", type=threads_option("--threads"), default=1,
                   help="CPU threads of each instance's runtime (default 1)")
    g.add_argument("--precision", default="fp32", help="network variant of the bundle (default fp32)")
    g.add_argument("--backend", default="onnxruntime", help="network backend of the runtime (default onnxruntime)")
    g.add_argument("--no-heatmaps", dest="heatmaps", action="store_false", help="no HEATMAP output")
    s = p.add_argument_group("serve and load")
    s.add_argument("--http-port", type=bounded_int("--http-port", 1, 65535), default=8000,
                   help="HTTP port of the server (default 8000)")
    s.add_argument("--grpc-port", type=bounded_int("--grpc-port", 1, 65535), default=8001,
                   help="gRPC port of the server (default 8001)")
    s.add_argument("--metrics-port", type=bounded_int("--metrics-port", 1, 65535), default=8002,
                   help="port of the server's Prometheus metrics, /metrics (default 8002)")
    s.add_argument("--address", default="127.0.0.1", help="address the server listens on (default 127.0.0.1)")
    s.add_argument("--env", default=None, help="the serving environment (default .venv-triton of this tree, or "
                                               "EDGE_SDK_TRITON_ENV)")
    p.set_defaults(func=run)


def _serve(args) -> int:
    from edge_sdk.cli import UserError
    from edge_sdk.serving.triton_repo import _is_repo
    from edge_sdk.serving.triton_server import ServerError, environment, find_env, server_command

    if len(args.bundles) != 1:
        raise UserError("serve: takes no bundles (write the repository first: edge-sdk triton BUNDLE... --repo DIR)")
    if not _is_repo(Path(args.repo)):
        raise UserError(f"--repo: {args.repo} is not a model repository written by edge-sdk triton")
    try:
        env = find_env(args.env)
    except ServerError as exc:
        raise UserError(str(exc)) from exc
    cmd = server_command(args.repo, env, http_port=args.http_port, grpc_port=args.grpc_port,
                         metrics_port=args.metrics_port, address=args.address)
    print(" ".join(cmd), flush=True)
    os.execve(cmd[0], cmd, environment(env))
    return 0  # not reached


def _load(args) -> int:
    import json
    import urllib.error
    import urllib.request

    from edge_sdk.cli import UserError

    names = args.bundles[1:]
    if not names:
        raise UserError("load: name the models to load, e.g. edge-sdk triton load line3 --http-port 8000")
    if args.repo is not None:
        from edge_sdk.serving.triton_repo import _is_repo

        if not _is_repo(Path(args.repo)):
            raise UserError(f"--repo: {args.repo} is not a model repository written by edge-sdk triton")
        missing = [n for n in names if not (Path(args.repo) / n / "config.pbtxt").is_file()]
        if missing:
            raise UserError(f"load: no model {', '.join(missing)} in {args.repo}")
    for name in names:
        url = f"http://{args.address}:{args.http_port}/v2/repository/models/{name}/load"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=600) as r:
                r.read()
        except urllib.error.HTTPError as exc:
            raise UserError(f"load {name}: {exc.code} {exc.read().decode(errors='replace')}") from exc
        except OSError as exc:
            raise UserError(f"load {name}: no server at {url} ({exc})") from exc
        with urllib.request.urlopen(f"http://{args.address}:{args.http_port}/v2/repository/index", data=b"{}") as r:
            index = [m for m in json.loads(r.read()) if m.get("name") == name]
        print(f"{name}: " + ", ".join(f"version {m.get('version')} {m.get('state')}" for m in index))
    return 0


def run(args) -> int:
    from edge_sdk.cli import UserError
    from edge_sdk.serving.triton_repo import RepositoryError, ServeOptions, add_version, write_repository

    if args.bundles[0] == "serve":
        return _serve(args)
    if args.bundles[0] == "load":
        return _load(args)
    if args.repo is None:
        raise UserError("--repo: required (the model repository folder to write or serve)")
    options = ServeOptions(instances=args.instances, kind=args.kind, gpus=args.gpus, max_batch=args.max_batch,
                           preferred_batch=args.preferred_batch, queue_delay_us=args.queue_delay_us,
                           threads=args.threads, precision=args.precision, backend=args.backend,
                           heatmaps=args.heatmaps)
    try:
        if args.add_version:
            if args.overwrite:
                raise RepositoryError("--add-version and --overwrite: choose one")
            for i, bundle in enumerate(args.bundles):
                name, version = add_version(bundle, args.repo, args.names[i] if args.names else None)
                print(f"{args.repo}/{name}/{version}: {bundle} (load it: edge-sdk triton load {name} --repo {args.repo})")
            return 0
        options.check()
        models = write_repository(args.bundles, args.repo, names=args.names, options=options, overwrite=args.overwrite)
    except RepositoryError as exc:
        raise UserError(str(exc)) from exc
    for name, folder in models.items():
        print(f"{folder}/1 ({name})")
    print(f"serve it: edge-sdk triton serve --repo {args.repo}")
    return 0

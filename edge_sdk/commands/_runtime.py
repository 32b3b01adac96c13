"""Opening a bundle for a CLI command: every failure becomes one line naming the bundle; the
network backend options commands share."""

from __future__ import annotations

import os


def add_backend_arguments(p) -> None:
    """--backend and --openvino-device (edge_sdk.Runtime's backend= and openvino_device=)."""
    p.add_argument("--backend", default="onnxruntime",
                   help="network backend: onnxruntime (default), openvino, tensorrt, or auto (on the CPU the faster "
                        "of onnxruntime and openvino, timed at load; the run reports which)")
    p.add_argument("--openvino-device", default=None, metavar="DEVICE",
                   help="OpenVINO's device with --backend openvino: CPU (default), GPU, NPU or AUTO, where OpenVINO "
                        "finds them")


def open_runtime(bundle, **options):
    """edge_sdk.Runtime(bundle, **options), or a UserError: a model directory is pointed to
    `edge-sdk export`; a bad bundle, a missing backend or device, or a bad option is named."""
    import edge_sdk
    from edge_sdk import _core
    from edge_sdk.bundle import BundleError
    from edge_sdk.cli import UserError

    path = os.fspath(bundle)
    if (os.path.isdir(path) and not os.path.exists(os.path.join(path, "manifest.json"))
            and os.path.exists(os.path.join(path, "config.json"))):
        raise UserError(f"{path} is a model directory (config.json), not a bundle: make a bundle of it first with "
                        f"`edge-sdk export {path} --out BUNDLE`")
    try:
        return edge_sdk.Runtime(bundle, **options)
    except (BundleError, _core.BackendError, ValueError) as exc:
        raise UserError(str(exc)) from exc

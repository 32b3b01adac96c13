"""`edge-sdk config`: where the C/C++ SDK of this installation lives (as `pybind11 --cmakedir`)."""

import json


def register(sub) -> None:
    p = sub.add_parser("config", help="print where the C/C++ SDK (CMake config, headers, library) is installed",
                       description="Without options: all paths as JSON. With options: one path a line, in "
                                   "the order given. Host CMake projects use "
                                   "-Dedge_sdk_DIR=\"$(edge-sdk config --cmake-dir)\".")
    for flag, key, text in [("--cmake-dir", "cmake_dir", "folder of edge_sdkConfig.cmake (for edge_sdk_DIR)"),
                            ("--include-dir", "include_dir", "folder holding edge_sdk/c_api.h"),
                            ("--lib-dir", "lib_dir", "folder holding libedge_sdk.so"),
                            ("--library", "library", "the shared library itself"),
                            ("--onnxruntime-lib", "onnxruntime_library",
                             "libonnxruntime of the installed onnxruntime wheel (for EDGE_SDK_ONNXRUNTIME_LIB)")]:
        p.add_argument(flag, dest="wanted", action="append_const", const=key, help=text)
    p.set_defaults(func=run, wanted=None)


def run(args) -> int:
    from edge_sdk.cli import UserError
    from edge_sdk.sdk import SdkNotFound, onnxruntime_library, sdk_paths

    try:
        paths = sdk_paths().as_dict()
    except SdkNotFound as exc:
        raise UserError(str(exc)) from exc
    ort = onnxruntime_library()
    paths["onnxruntime_library"] = str(ort) if ort else None
    if not args.wanted:
        print(json.dumps(paths, indent=2))
        return 0
    for key in args.wanted:
        if paths[key] is None:
            raise UserError("no onnxruntime wheel is installed (pip install onnxruntime)")
        print(paths[key])
    return 0

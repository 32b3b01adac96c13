"""`edge-sdk devices`: what the runtime found."""

import json


def register(sub) -> None:
    p = sub.add_parser("devices", help="list the CPU and CUDA devices the runtime can use")
    p.set_defaults(func=run)


def run(args) -> int:
    import edge_sdk

    print(json.dumps({"version": edge_sdk.__version__, "built_with_cuda": edge_sdk.built_with_cuda(),
                      "devices": edge_sdk.devices()}, indent=2))
    return 0

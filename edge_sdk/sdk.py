"""Where the C/C++ SDK of this installation lives: the shared library with the C ABI, the public
headers (``edge_sdk/c_api.h``, ``edge_sdk/edge_sdk.hpp``) and the CMake package config, so a host
program builds against an installed wheel with

    cmake -S host -B build -Dedge_sdk_DIR="$(edge-sdk config --cmake-dir)"

Layouts (see cmake/sdk_package.cmake): in a wheel everything is inside the package
(``edge_sdk/libedge_sdk.so``, ``edge_sdk/include``, ``edge_sdk/share/cmake/edge_sdk``); an in-place
build of a checkout writes the same config into the package folder, pointing at ``cpp/include``.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SdkPaths", "SdkNotFound", "sdk_paths", "onnxruntime_library"]

PACKAGE_DIR = Path(__file__).resolve().parent


class SdkNotFound(RuntimeError):
    """This installation has no C/C++ SDK files (the message says what is missing and how to get it)."""


@dataclass(frozen=True)
class SdkPaths:
    cmake_dir: Path    # holds edge_sdkConfig.cmake
    include_dir: Path  # holds edge_sdk/c_api.h
    lib_dir: Path      # holds libedge_sdk.so
    library: Path      # the shared library itself

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}


def _library(lib_dir: Path) -> Path | None:
    # The unversioned name first (wheel, and the development symlink of a CMake build).
    for name in ["libedge_sdk.so", *sorted(glob.glob(str(lib_dir / "libedge_sdk.so.*")))]:
        p = lib_dir / name
        if p.is_file():
            return p
    return None


def sdk_paths(package_dir: str | os.PathLike | None = None) -> SdkPaths:
    """The SDK of the installed package (or of `package_dir`); raises SdkNotFound naming what is missing."""
    pkg = Path(package_dir) if package_dir is not None else PACKAGE_DIR
    cmake_dir = pkg / "share" / "cmake" / "edge_sdk"
    config = cmake_dir / "edge_sdkConfig.cmake"
    hint = ("install the package with `pip install .`, or build a checkout in place with "
            "`cmake -S . -B build && cmake --build build`; `cmake --install build --prefix P` gives a "
            "standalone SDK in P (config in P/lib/cmake/edge_sdk)")
    if not config.is_file():
        raise SdkNotFound(f"{config}: not found; this edge_sdk installation carries no C/C++ SDK ({hint})")
    include_dir = pkg / "include"
    if not (include_dir / "edge_sdk" / "c_api.h").is_file():
        include_dir = pkg.parent / "cpp" / "include"  # in-place build of a checkout
    if not (include_dir / "edge_sdk" / "c_api.h").is_file():
        raise SdkNotFound(f"{pkg / 'include' / 'edge_sdk' / 'c_api.h'}: not found ({hint})")
    library = _library(pkg)
    if library is None:
        raise SdkNotFound(f"{pkg}: no libedge_sdk.so ({hint})")
    return SdkPaths(cmake_dir=cmake_dir, include_dir=include_dir, lib_dir=pkg, library=library)


def onnxruntime_library() -> Path | None:
    """libonnxruntime.so* inside the installed onnxruntime wheel (what the runtime loads with dlopen
    when no path is given), or None."""
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or spec.origin is None:
        return None
    capi = Path(spec.origin).parent / "capi"
    found = sorted(p for p in capi.glob("libonnxruntime.so*") if "providers" not in p.name)
    return found[-1] if found else None

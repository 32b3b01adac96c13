"""`edge-sdk config`: the paths of the C/C++ SDK (CMake package config, headers, library)."""

import json
import subprocess
import sys

import pytest

from edge_sdk.sdk import SdkNotFound, sdk_paths


def cli(*args):
    return subprocess.run([sys.executable, "-m", "edge_sdk.cli", "config", *args], capture_output=True, text=True)


def test_paths_point_at_the_sdk_files():
    p = sdk_paths()
    assert (p.cmake_dir / "edge_sdkConfig.cmake").is_file()
    assert (p.cmake_dir / "edge_sdkTargets.cmake").is_file()
    assert (p.include_dir / "edge_sdk" / "c_api.h").is_file()
    assert (p.include_dir / "edge_sdk" / "edge_sdk.hpp").is_file()
    assert p.library.is_file() and p.library.parent == p.lib_dir and p.library.name.startswith("libedge_sdk.so")


def test_cli_prints_each_path_in_the_order_asked():
    r = cli("--include-dir", "--cmake-dir", "--lib-dir")
    assert r.returncode == 0, r.stderr
    p = sdk_paths()
    assert r.stdout.splitlines() == [str(p.include_dir), str(p.cmake_dir), str(p.lib_dir)]


def test_cli_without_options_prints_json():
    r = cli()
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["cmake_dir"] == str(sdk_paths().cmake_dir)
    assert set(d) == {"cmake_dir", "include_dir", "lib_dir", "library", "onnxruntime_library"}


def test_missing_sdk_names_the_config_file(tmp_path):
    with pytest.raises(SdkNotFound, match=r"edge_sdkConfig\.cmake: not found"):
        sdk_paths(tmp_path)

"""Starting Triton Inference Server on a repository written by `edge-sdk triton`.

The server is the `tritonserver` binary of the nvidia-pytriton wheel, installed with its Python
backend into a serving environment by scripts/setup_triton.sh (default: .venv-triton at the root of
this source tree, or EDGE_SDK_TRITON_ENV). That environment is a venv of the system's
/usr/bin/python3.11, because the backend's stub embeds the system's shared libpython3.11.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the source tree (edge_sdk/serving/ -> root)
ENV_VAR = "EDGE_SDK_TRITON_ENV"


class ServerError(RuntimeError):
    """The serving environment is missing or the server did not come up; the message says why."""


@dataclass
class ServingEnv:
    root: Path          # the venv
    python: Path        # its interpreter (runs the clients: tritonclient lives there)
    server: Path        # tritonserver
    backends: Path      # backend directory with python/ (libtriton_python.so + the 3.11 stub)
    libs: Path          # the wheel's bundled shared libraries
    site_packages: Path


def find_env(env: str | os.PathLike | None = None) -> ServingEnv:
    """The serving environment: ``env``, else $EDGE_SDK_TRITON_ENV, else ROOT/.venv-triton."""
    root = Path(env or os.environ.get(ENV_VAR) or ROOT / ".venv-triton")
    site = root / "lib" / "python3.11" / "site-packages"
    e = ServingEnv(root=root, python=root / "bin" / "python", server=site / "pytriton" / "tritonserver" / "bin" /
                   "tritonserver", backends=root / "tritonserver" / "backends", libs=site / "nvidia_pytriton.libs",
                   site_packages=site)
    for what, p in (("tritonserver", e.server), ("the Python backend's stub",
                                                 e.backends / "python" / "triton_python_backend_stub"),
                    ("the venv's python", e.python)):
        if not p.exists():
            raise ServerError(f"serving environment {root}: {what} not found ({p}); run scripts/setup_triton.sh "
                              f"(or set {ENV_VAR})")
    return e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(env: ServingEnv) -> dict[str, str]:
    """Process environment of the server (and its backend stubs) and of the clients."""
    out = dict(os.environ)
    out["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(env.libs), out.get("LD_LIBRARY_PATH")) if p)
    # triton_model.py puts PYTHONPATH first on sys.path: the venv's packages, then this edge_sdk
    out["PYTHONPATH"] = os.pathsep.join([str(env.site_packages), str(ROOT)])
    return out


def server_command(repo: str | os.PathLike, env: ServingEnv, *, http_port: int = 8000, grpc_port: int = 8001,
                   metrics_port: int = 8002, address: str = "127.0.0.1", models: list[str] | None = None,
                   log_verbose: int = 0) -> list[str]:
    """tritonserver's command line: explicit model control (the repository API loads and unloads;
    the named models, or all, at start), HTTP, gRPC and metrics on ``address``."""
    cmd = [str(env.server), f"--model-repository={Path(repo).resolve()}", f"--backend-directory={env.backends}",
           "--model-control-mode=explicit", f"--http-address={address}", f"--http-port={http_port}",
           f"--grpc-address={address}", f"--grpc-port={grpc_port}", f"--metrics-address={address}",
           f"--metrics-port={metrics_port}", "--allow-metrics=true", "--allow-gpu-metrics=false",
           "--strict-readiness=true", "--exit-timeout-secs=30", f"--log-verbose={log_verbose}"]
    cmd += [f"--load-model={m}" for m in (models or ["*"])]
    return cmd


class Server:
    """A tritonserver subprocess on free (or given) ports; ``with Server(repo) as s: s.http_url``."""

    def __init__(self, repo, env: ServingEnv | None = None, *, log: str | os.PathLike | None = None,
                 http_port: int | None = None, grpc_port: int | None = None, metrics_port: int | None = None,
                 timeout: float = 120.0, models: list[str] | None = None):
        self.env = env or find_env()
        self.repo = Path(repo)
        self.http_port, self.grpc_port, self.metrics_port = (http_port or free_port(), grpc_port or free_port(),
                                                             metrics_port or free_port())
        self.log_path = Path(log) if log else None
        self.timeout, self.models, self.proc = timeout, models, None

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> "Server":
        cmd = server_command(self.repo, self.env, http_port=self.http_port, grpc_port=self.grpc_port,
                             metrics_port=self.metrics_port, models=self.models)
        out = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, env=environment(self.env), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"tritonserver exited with status {self.proc.returncode}" + self._tail())
            try:
                with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise ServerError(f"tritonserver not ready after {self.timeout:.0f} s" + self._tail())

    def _tail(self) -> str:
        if self.log_path and self.log_path.exists():
            return ":\n" + "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

"""A short demo of the kernels on random data: SSIM of a batch of 60 single-channel 256x256 patches."""

import time

import numpy as np

import edge_sdk
from edge_sdk import kernels


def main() -> None:
    print(f"edge_sdk {edge_sdk.__version__}; devices: {edge_sdk.devices()}")
    rng = np.random.default_rng(0)
    a = rng.random((60, 256, 256), dtype=np.float32)
    b = np.clip(a + 0.05 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    t = time.perf_counter()
    s = kernels.ssim(a, b)
    print(f"SSIM of 60 x 256 x 256: mean {s.mean():.4f} in {1e3 * (time.perf_counter() - t):.1f} ms")


if __name__ == "__main__":
    main()

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.linalg import solve_triangular

import edge_sdk
from edge_sdk import kernels
from edge_sdk.kernels.mahalanobis import cpu_isa
from tests.gpu import requires_cuda

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- inputs and float64 references ------------------------------------------------------------


def random_gaussians(rng, n, l, c, eps=0.01, samples=None, scale=1.0):
    """Fresh per-location SPD covariances (sample covariances of `samples` draws + eps*I, as PaDiM
    builds them), their float32 Cholesky factors, means, and features drawn near them."""
    samples = samples or c + 5
    a = rng.standard_normal((l, c, samples)) * scale
    cov = a @ a.transpose(0, 2, 1) / samples + eps * np.eye(c)
    chol = np.linalg.cholesky(cov).astype(np.float32)
    mean = (rng.standard_normal((l, c)) * 2).astype(np.float32)
    x = mean + rng.standard_normal((n, l, c)) * scale
    return x.astype(np.float32), mean, chol


def ref_whiten(x, mean, chol):
    """float64 forward substitution, location by location (scipy's triangular solver)."""
    n, l, c = x.shape
    z = np.empty((n, l, c))
    for loc in range(l):
        delta = (x[:, loc].astype(np.float64) - mean[loc].astype(np.float64)).T
        z[:, loc] = solve_triangular(chol[loc].astype(np.float64), delta, lower=True).T
    return z


def ref_mahalanobis_via_covariance(x, mean, chol):
    """Independent route: d^2 = delta^T Sigma^-1 delta with Sigma = chol chol^T in float64,
    solved with np.linalg.solve (batched over locations)."""
    ch = chol.astype(np.float64)
    cov = ch @ ch.transpose(0, 2, 1)
    delta = (x.astype(np.float64) - mean.astype(np.float64)).transpose(1, 2, 0)  # (L, C, N)
    sol = np.linalg.solve(cov, delta)
    return np.sqrt(np.maximum((delta * sol).sum(1), 0.0)).T  # (N, L)


def ref_local_nearest(z, centroids):
    diff = z.astype(np.float64)[:, :, None, :] - centroids.astype(np.float64)[None]  # N, L, K, C
    return np.sqrt((diff**2).sum(-1)).min(-1)


def assert_whitened_close(z, ref, rtol=1e-4):
    # per vector, relative to its norm (single entries of z can be ~0)
    err = np.abs(z - ref).max(-1)
    scale = np.linalg.norm(ref, axis=-1)
    assert np.all(err <= rtol * np.maximum(scale, 1e-30)), float((err / scale).max())


SHAPES = [
    (1, 1, 1),
    (3, 5, 1),
    (1, 7, 13),
    (4, 3, 7),
    (16, 9, 100),
    (17, 4, 33),
    (21, 3, 64),
    (2, 2, 9),
    (40, 2, 8),
]


@pytest.mark.parametrize("n,l,c", SHAPES)
def test_matches_float64_references(rng, n, l, c):
    x, mean, chol = random_gaussians(rng, n, l, c)
    d = kernels.mahalanobis(x, mean, chol)
    z = kernels.whiten(x, mean, chol)
    assert d.shape == (n, l) and d.dtype == np.float32
    assert z.shape == (n, l, c) and z.dtype == np.float32
    zref = ref_whiten(x, mean, chol)
    np.testing.assert_allclose(d, np.linalg.norm(zref, axis=-1), rtol=1e-4)
    np.testing.assert_allclose(d, ref_mahalanobis_via_covariance(x, mean, chol), rtol=1e-4)
    assert_whitened_close(z, zref)
    np.testing.assert_allclose(np.linalg.norm(z.astype(np.float64), axis=-1), d, rtol=1e-5)


def test_large_l(rng):
    x, mean, chol = random_gaussians(rng, 3, 4096, 12)
    d = kernels.mahalanobis(x, mean, chol)
    np.testing.assert_allclose(d, ref_mahalanobis_via_covariance(x, mean, chol), rtol=1e-4)


@pytest.mark.parametrize("eps,samples", [(1e-2, 10), (1e-3, 20), (1e-4, 50), (1e-6, 30)])
def test_ill_conditioned_covariances_with_regularization(rng, eps, samples):
    # Rank-deficient sample covariances (fewer samples than channels) made definite by eps*I,
    # condition numbers 1e3..1e7: the substitution keeps 1e-4 relative accuracy (a float32
    # explicit inverse, as anomalib computes it, is off by ~1e-2 at 1e7).
    n, l, c = 16, 6, 100
    x, mean, chol = random_gaussians(rng, n, l, c, eps=eps, samples=samples)
    ch = chol.astype(np.float64)
    cond = np.linalg.cond(ch @ ch.transpose(0, 2, 1))
    assert cond.max() > 1e3
    d = kernels.mahalanobis(x, mean, chol)
    np.testing.assert_allclose(d, ref_mahalanobis_via_covariance(x, mean, chol), rtol=1e-4)
    # features on the low-variance directions too (far in Mahalanobis terms)
    far = (mean + rng.standard_normal((n, l, c)) * 0.05).astype(np.float32)
    np.testing.assert_allclose(
        kernels.mahalanobis(far, mean, chol), ref_mahalanobis_via_covariance(far, mean, chol), rtol=1e-4
    )


def test_only_the_lower_triangle_is_read(rng):
    x, mean, chol = random_gaussians(rng, 4, 3, 10)
    messy = chol.copy()
    iu = np.triu_indices(10, 1)
    messy[:, iu[0], iu[1]] = rng.standard_normal((3, len(iu[0])))
    messy[1, 0, 5] = np.nan
    np.testing.assert_array_equal(kernels.mahalanobis(x, mean, messy), kernels.mahalanobis(x, mean, chol))


def test_thread_count_and_batch_split_independent(rng):
    x, mean, chol = random_gaussians(rng, 21, 50, 37)
    before = edge_sdk.get_num_threads()
    try:
        edge_sdk.set_num_threads(1)
        one = kernels.mahalanobis(x, mean, chol)
        z_one = kernels.whiten(x, mean, chol)
        edge_sdk.set_num_threads(3)
        three = kernels.mahalanobis(x, mean, chol)
        z_three = kernels.whiten(x, mean, chol)
    finally:
        edge_sdk.set_num_threads(before)
    np.testing.assert_array_equal(one, three)
    np.testing.assert_array_equal(z_one, z_three)
    # Tiles of several vectors and single vectors follow the same summation order.
    singles = np.concatenate([kernels.mahalanobis(x[i : i + 1].copy(), mean, chol) for i in range(21)])
    np.testing.assert_array_equal(singles, one)


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_portable_and_avx2_paths(rng, tmp_path, isa):
    # The ISA is chosen once per process: run the other code paths in a child process.
    x, mean, chol = random_gaussians(rng, 19, 5, 45)
    zc = rng.standard_normal((19, 5, 45)).astype(np.float32)
    cent = rng.standard_normal((5, 3, 45)).astype(np.float32)
    for name, arr in dict(x=x, mean=mean, chol=chol, zc=zc, cent=cent).items():
        np.save(tmp_path / f"{name}.npy", arr)
    code = (
        "import numpy as np, sys; from edge_sdk import kernels; from edge_sdk.kernels.mahalanobis import cpu_isa;"
        "p = sys.argv[1]; a = {k: np.load(f'{p}/{k}.npy', allow_pickle=False) for k in ['x','mean','chol','zc','cent']};"
        "np.save(f'{p}/d.npy', kernels.mahalanobis(a['x'], a['mean'], a['chol']));"
        "np.save(f'{p}/z.npy', kernels.whiten(a['x'], a['mean'], a['chol']));"
        "np.save(f'{p}/nn.npy', kernels.local_nearest(a['zc'], a['cent']));"
        "print(cpu_isa())"
    )
    env = dict(os.environ, EDGE_SDK_CPU_ISA=isa, EDGE_SDK_NUM_THREADS="1", PYTHONPATH=REPO)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True, check=True)
    used = out.stdout.strip()
    if isa == "avx2" and used == "generic":
        pytest.skip("this CPU has no AVX2")
    assert used == isa
    zref = ref_whiten(x, mean, chol)
    np.testing.assert_allclose(np.load(tmp_path / "d.npy"), np.linalg.norm(zref, axis=-1), rtol=1e-4)
    assert_whitened_close(np.load(tmp_path / "z.npy"), zref)
    np.testing.assert_allclose(np.load(tmp_path / "nn.npy"), ref_local_nearest(zc, cent), rtol=1e-5)


def test_reports_the_cpu_path():
    assert cpu_isa() in ("avx512", "avx2", "generic")


# ---- local_nearest ---------------------------------------------------------------------------


@pytest.mark.parametrize("n,l,k,c", [(1, 1, 1, 1), (5, 4, 1, 7), (16, 9, 7, 100), (3, 300, 4, 17), (2, 3, 10, 64)])
def test_local_nearest_matches_float64(rng, n, l, k, c):
    z = rng.standard_normal((n, l, c)).astype(np.float32)
    cent = rng.standard_normal((l, k, c)).astype(np.float32)
    cent[:, 0] = z[0] + 0.01 * rng.standard_normal((l, c)).astype(np.float32)  # a close one
    d = kernels.local_nearest(z, cent)
    assert d.shape == (n, l) and d.dtype == np.float32
    np.testing.assert_allclose(d, ref_local_nearest(z, cent), rtol=1e-5)


def test_local_nearest_is_accurate_far_from_the_origin(rng):
    # Vectors ~1e3 from the origin, 1e-2 apart: |a|^2 - 2ab + |b|^2 in float32 would lose all
    # digits; the direct differences keep them.
    n, l, k, c = 4, 6, 3, 32
    base = (1e3 + rng.standard_normal((l, c))).astype(np.float32)
    z = (base + 1e-2 * rng.standard_normal((n, l, c))).astype(np.float32)
    cent = (base[:, None] + 1e-2 * rng.standard_normal((l, k, c))).astype(np.float32)
    np.testing.assert_allclose(kernels.local_nearest(z, cent), ref_local_nearest(z, cent), rtol=1e-5)


def test_whitened_nearest_mean_is_the_mahalanobis_distance(rng):
    # MhBC-PatchCore's memory lives in whitened space: there, the distance to the whitened mean
    # (the zero vector) is the Mahalanobis distance.
    x, mean, chol = random_gaussians(rng, 6, 10, 24)
    z = kernels.whiten(x, mean, chol)
    zero = np.zeros((10, 1, 24), np.float32)
    np.testing.assert_allclose(kernels.local_nearest(z, zero), kernels.mahalanobis(x, mean, chol), rtol=1e-6)


def test_local_nearest_far_candidate_overflow_is_not_an_error(rng):
    z = rng.standard_normal((2, 3, 8)).astype(np.float32)
    cent = rng.standard_normal((3, 2, 8)).astype(np.float32)
    cent[1, 1] = 1e30  # its squared distance overflows; the nearest one is fine
    np.testing.assert_allclose(kernels.local_nearest(z, cent), ref_local_nearest(z, cent), rtol=1e-5)


def test_local_nearest_thread_count_independent(rng):
    z = rng.standard_normal((9, 200, 20)).astype(np.float32)
    cent = rng.standard_normal((200, 5, 20)).astype(np.float32)
    before = edge_sdk.get_num_threads()
    try:
        edge_sdk.set_num_threads(1)
        one = kernels.local_nearest(z, cent)
        edge_sdk.set_num_threads(3)
        three = kernels.local_nearest(z, cent)
    finally:
        edge_sdk.set_num_threads(before)
    np.testing.assert_array_equal(one, three)


# ---- bad inputs --------------------------------------------------------------------------------


def test_bad_arguments_name_the_argument(rng):
    x, mean, chol = random_gaussians(rng, 2, 4, 5)
    with pytest.raises(TypeError, match="features: expected dtype float32, got float64"):
        kernels.mahalanobis(x.astype(np.float64), mean, chol)
    with pytest.raises(TypeError, match="chol: expected a numpy array"):
        kernels.whiten(x, mean, chol.tolist())
    with pytest.raises(ValueError, match="features: expected 3 dimensions"):
        kernels.mahalanobis(x[0], mean, chol)
    with pytest.raises(ValueError, match="mean: expected a C-contiguous"):
        kernels.mahalanobis(x, np.asfortranarray(mean), chol)
    with pytest.raises(ValueError, match=r"mean: expected shape \(4, 5\)"):
        kernels.mahalanobis(x, mean[:3].copy(), chol)
    with pytest.raises(ValueError, match=r"chol: expected shape \(4, 5, 5\)"):
        kernels.whiten(x, mean, chol[:, :4, :4].copy())
    with pytest.raises(ValueError, match="features: empty"):
        kernels.mahalanobis(x[:0], mean, chol)
    with pytest.raises(ValueError, match="device"):
        kernels.mahalanobis(x, mean, chol, device="tpu")


@pytest.mark.parametrize("fn", [kernels.mahalanobis, kernels.whiten])
@pytest.mark.parametrize("value", [0.0, -0.5, np.nan, np.inf])
def test_bad_chol_diagonal_names_chol_and_location(rng, fn, value):
    x, mean, chol = random_gaussians(rng, 3, 6, 7)
    chol[4, 2, 2] = value
    with pytest.raises(ValueError, match=r"chol: location 4: diagonal entry \[4, 2, 2\]"):
        fn(x, mean, chol)


@pytest.mark.parametrize("fn", [kernels.mahalanobis, kernels.whiten])
def test_non_finite_values_name_argument_and_entry(rng, fn):
    x, mean, chol = random_gaussians(rng, 3, 6, 7)
    bad = chol.copy()
    bad[2, 5, 1] = np.inf
    with pytest.raises(ValueError, match=r"chol: location 2: entry \[2, 5, 1\] is inf"):
        fn(x, mean, bad)
    bad = mean.copy()
    bad[3, 6] = np.nan
    with pytest.raises(ValueError, match=r"mean: location 3: entry \[3, 6\] is nan"):
        fn(x, bad, chol)
    bad = x.copy()
    bad[1, 5, 0] = -np.inf
    with pytest.raises(ValueError, match=r"features: location 5: entry \[1, 5, 0\] is -inf"):
        fn(bad, mean, chol)
    # the lowest flagged location is reported
    bad[2, 0, 3] = np.nan
    with pytest.raises(ValueError, match=r"features: location 0: entry \[2, 0, 3\] is nan"):
        fn(bad, mean, chol)


def test_overflowing_result_is_an_error_not_infinity(rng):
    x, mean, chol = random_gaussians(rng, 2, 3, 4)
    x[1, 2] = 3e38
    chol[2] = np.eye(4, dtype=np.float32) * 1e-3
    with pytest.raises(ValueError, match=r"features: location 2: the Mahalanobis distance at \[1, 2\] overflows"):
        kernels.mahalanobis(x, mean, chol)
    with pytest.raises(ValueError, match=r"features: location 2: the whitened value at \[1, 2, 0\] overflows"):
        kernels.whiten(x, mean, chol)


def test_local_nearest_bad_inputs(rng):
    z = rng.standard_normal((2, 3, 4)).astype(np.float32)
    cent = rng.standard_normal((3, 2, 4)).astype(np.float32)
    with pytest.raises(TypeError, match="centroids: expected dtype float32"):
        kernels.local_nearest(z, cent.astype(np.float16))
    with pytest.raises(ValueError, match=r"centroids: expected shape \(l, k, c\) = \(3, k, 4\)"):
        kernels.local_nearest(z, cent[:, :, :3].copy())
    with pytest.raises(ValueError, match="centroids: empty"):
        kernels.local_nearest(z, cent[:, :0])
    with pytest.raises(ValueError, match="z: empty"):
        kernels.local_nearest(z[:0], cent)
    with pytest.raises(ValueError, match="z: expected a C-contiguous"):
        kernels.local_nearest(z.transpose(1, 0, 2), cent[:, :, :].reshape(3, 2, 4))
    bad = cent.copy()
    bad[1, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"centroids: location 1: entry \[1, 1, 2\] is nan"):
        kernels.local_nearest(z, bad)
    bad = z.copy()
    bad[1, 2, 3] = np.inf
    with pytest.raises(ValueError, match=r"z: location 2: entry \[1, 2, 3\] is inf"):
        kernels.local_nearest(bad, cent)
    big = np.full((1, 1, 4), 3e38, np.float32)
    with pytest.raises(ValueError, match="overflows float32"):
        kernels.local_nearest(big, -big.reshape(1, 1, 4))


def test_cuda_request_without_device_is_clear_error(rng):
    if any(d["kind"] == "cuda" for d in edge_sdk.devices()):
        pytest.skip("a CUDA device is present; covered by the GPU parity tests")
    x, mean, chol = random_gaussians(rng, 1, 2, 3)
    with pytest.raises(ValueError, match="CUDA"):
        kernels.mahalanobis(x, mean, chol, device="cuda:0")
    with pytest.raises(ValueError, match="CUDA"):
        kernels.local_nearest(x, chol, device="cuda:0")


# ---- GPU parity (skip without a CUDA device) -------------------------------------------------


@requires_cuda
@pytest.mark.parametrize("n,l,c", [(1, 1, 1), (16, 64, 100), (5, 33, 13)])
def test_gpu_matches_cpu_and_reference(rng, n, l, c):
    x, mean, chol = random_gaussians(rng, n, l, c)
    d_gpu = kernels.mahalanobis(x, mean, chol, device="cuda:0")
    z_gpu = kernels.whiten(x, mean, chol, device="cuda:0")
    np.testing.assert_allclose(d_gpu, kernels.mahalanobis(x, mean, chol), rtol=1e-5)
    zref = ref_whiten(x, mean, chol)
    np.testing.assert_allclose(d_gpu, np.linalg.norm(zref, axis=-1), rtol=1e-4)
    assert_whitened_close(z_gpu, zref)


@requires_cuda
def test_gpu_local_nearest_matches_cpu(rng):
    z = rng.standard_normal((7, 50, 30)).astype(np.float32)
    cent = rng.standard_normal((50, 4, 30)).astype(np.float32)
    np.testing.assert_allclose(kernels.local_nearest(z, cent, device="cuda:0"), ref_local_nearest(z, cent), rtol=1e-5)


@requires_cuda
def test_gpu_reports_bad_inputs_like_the_cpu(rng):
    x, mean, chol = random_gaussians(rng, 3, 6, 7)
    chol[4, 2, 2] = -1.0
    with pytest.raises(ValueError, match=r"chol: location 4: diagonal entry \[4, 2, 2\]"):
        kernels.mahalanobis(x, mean, chol, device="cuda:0")
    chol[4, 2, 2] = 1.0
    x[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"features: location 3: entry \[1, 3, 0\] is nan"):
        kernels.whiten(x, mean, chol, device="cuda:0")
    z = rng.standard_normal((2, 3, 4)).astype(np.float32)
    cent = rng.standard_normal((3, 2, 4)).astype(np.float32)
    cent[2, 0, 1] = np.inf
    with pytest.raises(ValueError, match=r"centroids: location 2: entry \[2, 0, 1\] is inf"):
        kernels.local_nearest(z, cent, device="cuda:0")

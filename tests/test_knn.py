from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import edge_sdk
from edge_sdk import _core, kernels
from tests.gpu import requires_cuda


def ref_knn(queries, bank, k):
    """Independent float64 reference: exact squared differences, bank chunks, stable order
    (equal distances by the lower index). Returns distances (Q, k+1 or M) and indices."""
    q = queries.astype(np.float64)
    b = bank.astype(np.float64)
    keep = min(k + 1, b.shape[0])
    best_d = np.full((q.shape[0], 0), np.inf)
    best_i = np.zeros((q.shape[0], 0), dtype=np.int64)
    step = max(1, 4_000_000 // (q.shape[0] * q.shape[1]))
    for c0 in range(0, b.shape[0], step):
        blk = b[c0 : c0 + step]
        d2 = ((q[:, None, :] - blk[None, :, :]) ** 2).sum(-1)
        cat_d = np.concatenate([best_d, d2], axis=1)
        cat_i = np.concatenate([best_i, np.broadcast_to(np.arange(c0, c0 + blk.shape[0]), d2.shape)], axis=1)
        order = np.lexsort((cat_i, cat_d), axis=-1)[:, :keep]  # by distance, then index
        best_d = np.take_along_axis(cat_d, order, 1)
        best_i = np.take_along_axis(cat_i, order, 1)
    return np.sqrt(best_d), best_i


def check_against_reference(queries, bank, k, dist, idx, tie_rtol=1e-9, rtol=2e-7):
    """Every returned distance is the true distance of the returned row (float32 rounding),
    distances equal the float64 reference's to `rtol` (the CPU is exact: 2e-7, float32 rounding),
    and indices equal the reference wherever the reference distance is not tied (within
    tie_rtol) with the rank before or after it."""
    q64, b64 = queries.astype(np.float64), bank.astype(np.float64)
    ref_d, ref_i = ref_knn(queries, bank, k)
    assert dist.shape == (queries.shape[0], k) and idx.shape == (queries.shape[0], k)
    assert dist.dtype == np.float32 and idx.dtype == np.int64
    assert np.all((idx >= 0) & (idx < bank.shape[0]))
    assert all(len(set(row)) == k for row in idx.tolist()), "duplicate neighbours in a row"
    assert np.all(np.diff(dist, axis=1) >= 0), "distances not ascending"
    true_d = np.sqrt(((q64[:, None, :] - b64[idx]) ** 2).sum(-1))
    np.testing.assert_allclose(dist, true_d, rtol=2e-7, atol=1e-30)
    np.testing.assert_allclose(dist, ref_d[:, :k], rtol=rtol, atol=1e-30)
    # ties: a rank whose reference distance is within tie_rtol of the rank before or after it
    scale = np.maximum(ref_d, 1e-30)
    near = np.abs(np.diff(ref_d, axis=1)) <= tie_rtol * scale[:, 1:]
    tied = np.zeros(ref_d.shape, dtype=bool)
    tied[:, 1:] |= near
    tied[:, :-1] |= near
    tied = tied[:, :k]
    mism = (idx != ref_i[:, :k]) & ~tied
    assert not mism.any(), f"{mism.sum()} untied indices differ from the reference"


def normal(rng, shape, scale=1.0, offset=0.0):
    return (offset + scale * rng.standard_normal(shape)).astype(np.float32)


@pytest.mark.parametrize(
    "q,m,d,k",
    [(1, 1, 1, 1), (1, 50, 7, 3), (37, 101, 13, 5), (200, 1000, 64, 1), (65, 300, 160, 10),
     (10, 17, 5, 17), (130, 513, 33, 32), (300, 2000, 161, 4), (9, 70, 1, 1)],
)
def test_matches_float64_reference(rng, q, m, d, k):
    queries, bank = normal(rng, (q, d)), normal(rng, (m, d))
    dist, idx = kernels.knn(queries, bank, k)
    check_against_reference(queries, bank, k, dist, idx)


def test_uniform_data_with_offset_and_k_equals_m(rng):
    # features far from the origin (like post-ReLU activations): the expansion cancels badly
    queries = rng.random((40, 24), dtype=np.float32) + 50.0
    bank = rng.random((60, 24), dtype=np.float32) + 50.0
    dist, idx = kernels.knn(queries, bank, 60)
    check_against_reference(queries, bank, 60, dist, idx)
    assert np.array_equal(np.sort(idx, axis=1), np.broadcast_to(np.arange(60), (40, 60)))


def test_large_bank_small_dimension_exercises_chunking(rng):
    queries, bank = normal(rng, (40, 8)), normal(rng, (200_000, 8))
    dist, idx = kernels.knn(queries, bank, 4)
    check_against_reference(queries, bank, 4, dist, idx)


def test_float16_bank_matches_reference_on_rounded_bank(rng):
    queries, bank = normal(rng, (70, 40)), normal(rng, (3000, 40))
    bank16 = bank.astype(np.float16)
    dist, idx = kernels.knn(queries, bank16, 5)
    check_against_reference(queries, bank16.astype(np.float32), 5, dist, idx)
    # odd D (tails of the widening loops) and subnormal/large half values
    bank16 = (normal(rng, (500, 19)) * np.float32(1e-5)).astype(np.float16)
    bank16[::7] = (normal(rng, (len(bank16[::7]), 19)) * 1000).astype(np.float16)
    queries = normal(rng, (33, 19), scale=1e-5)
    dist, idx = kernels.knn(queries, bank16, 3)
    check_against_reference(queries, bank16.astype(np.float32), 3, dist, idx)


def clustered(rng, n_centres, per_centre, d, spread, offset):
    centres = normal(rng, (n_centres, d), scale=10.0, offset=offset)
    pts = centres[rng.integers(0, n_centres, per_centre * n_centres)]
    return (pts + spread * rng.standard_normal(pts.shape)).astype(np.float32), centres


@pytest.mark.parametrize("extra", [8, 0])
def test_clustered_near_duplicates_are_exact(rng, extra):
    # Neighbours 1e-4 apart on vectors of norm ~1e3: the float32 expansion cannot rank them;
    # the re-rank and the certification (with extra=0, every query needs a second scan) must.
    bank, centres = clustered(rng, 20, 100, 48, spread=1e-4, offset=100.0)
    bank[5] = bank[17]  # exact duplicates: equal distances, ordered by index
    bank[900] = bank[17]
    queries = np.concatenate([
        (centres[rng.integers(0, 20, 60)] + 1e-4 * rng.standard_normal((60, 48))).astype(np.float32),
        bank[[17, 3, 400]],
    ])
    dist, idx = _core.knn(queries, bank, 3, "cpu", extra=extra)
    check_against_reference(queries, bank, 3, dist, idx)
    assert list(idx[-3]) == [5, 17, 900] and dist[-3, 0] == 0.0


def test_all_isas_and_thread_counts_give_identical_results(rng):
    # with several threads and few queries the bank is split into slices (M >= 4096)
    bank, centres = clustered(rng, 10, 1000, 37, spread=1e-3, offset=20.0)
    queries = np.concatenate([normal(rng, (150, 37), scale=10.0, offset=20.0),
                              (centres[rng.integers(0, 10, 50)] + 1e-3).astype(np.float32)])
    before = edge_sdk.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            edge_sdk.set_num_threads(threads)
            for isa in _core.knn_isas():
                results.append((threads, isa, _core.knn(queries, bank, 7, "cpu", isa=isa)))
    finally:
        edge_sdk.set_num_threads(before)
    d0, i0 = results[0][2]
    check_against_reference(queries, bank, 7, d0, i0)
    for threads, isa, (d, i) in results[1:]:
        assert np.array_equal(d, d0) and np.array_equal(i, i0), (threads, isa)


def test_bad_inputs_name_the_argument(rng):
    q, b = normal(rng, (4, 6)), normal(rng, (10, 6))
    with pytest.raises(TypeError, match="queries: expected dtype float32, got float64"):
        kernels.knn(q.astype(np.float64), b)
    with pytest.raises(TypeError, match="bank: expected dtype float32 or float16, got int32"):
        kernels.knn(q, b.astype(np.int32))
    with pytest.raises(TypeError, match="bank: expected a numpy array"):
        kernels.knn(q, b.tolist())
    with pytest.raises(ValueError, match="queries: expected 2 dimensions"):
        kernels.knn(q[0], b)
    with pytest.raises(ValueError, match="bank: expected 2 dimensions"):
        kernels.knn(q, b.astype(np.float16)[None])
    with pytest.raises(ValueError, match="queries: expected a C-contiguous"):
        kernels.knn(np.asfortranarray(q), b)
    with pytest.raises(ValueError, match="bank: expected a C-contiguous"):
        kernels.knn(q, b[:, ::2])
    with pytest.raises(ValueError, match="bank: expected a C-contiguous"):
        kernels.knn(q[:, :3].copy(), b.astype(np.float16)[:, ::2])
    with pytest.raises(ValueError, match="queries and bank: feature dimensions differ"):
        kernels.knn(q, b[:, :5].copy())
    with pytest.raises(ValueError, match="queries: empty"):
        kernels.knn(q[:0], b)
    with pytest.raises(ValueError, match="bank: empty"):
        kernels.knn(q, b[:0])
    with pytest.raises(ValueError, match="k: expected 1 <= k <= 10"):
        kernels.knn(q, b, 0)
    with pytest.raises(ValueError, match="k: expected 1 <= k <= 10"):
        kernels.knn(q, b, 11)
    with pytest.raises(TypeError, match="k: expected an int"):
        kernels.knn(q, b, 1.5)
    bad = q.copy()
    bad[2, 3] = np.inf
    with pytest.raises(ValueError, match="queries: contains NaN"):
        kernels.knn(bad, b)
    bad = b.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="bank: contains NaN"):
        kernels.knn(q, bad)
    with pytest.raises(ValueError, match="bank: contains NaN"):
        kernels.knn(q, bad.astype(np.float16))
    with pytest.raises(ValueError, match="bank: contains NaN or infinity, or values too large"):
        kernels.knn(q, b * np.float32(1e30))
    with pytest.raises(ValueError, match="queries: row 0 contains NaN or infinity, or values too large"):
        kernels.knn(q * np.float32(1e30), b)
    with pytest.raises(ValueError, match="device"):
        kernels.knn(q, b, device="tpu")
    with pytest.raises(ValueError, match="isa"):
        _core.knn(q, b, 1, "cpu", isa="sse9")


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize(
    "q,m,d,k",
    [(1, 1, 1, 1), (37, 101, 13, 5), (10, 17, 5, 17), (130, 513, 33, 32), (300, 2000, 161, 4),
     (70, 5000, 384, 1), (2000, 4099, 24, 3)],
)
def test_index_search_is_identical_to_knn(rng, dtype, q, m, d, k):
    queries = normal(rng, (q, d), offset=3.0)
    bank = normal(rng, (m, d), offset=3.0).astype(dtype)
    index = kernels.KnnIndex(bank)
    assert (index.rows, index.dim, index.bank.dtype) == (m, d, np.dtype(dtype))
    dist, idx = index.search(queries, k)
    want_d, want_i = kernels.knn(queries, bank, k)
    assert np.array_equal(dist, want_d) and np.array_equal(idx, want_i)
    if q * m <= 2_000_000:  # and both are right, not equally wrong
        check_against_reference(queries, bank.astype(np.float32), k, dist, idx)


def test_index_repeated_searches_and_every_isa(rng):
    # clustered near-duplicates: some queries need the certification re-scan
    bank, centres = clustered(rng, 10, 300, 37, spread=1e-3, offset=20.0)
    batches = [normal(rng, (n, 37), scale=10.0, offset=20.0) for n in (500, 1, 64)]
    batches.append((centres[rng.integers(0, 10, 40)] + 1e-3).astype(np.float32))
    for isa in _core.knn_isas():
        index = _core.KnnIndex(bank, isa=isa)
        assert index.isa == isa
        for k in (1, 7, 3000):
            for queries in batches:
                got = index.search(queries, k)
                want = _core.knn(queries, bank, k, "cpu", isa=isa)
                assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), (isa, k)


def test_index_keeps_its_own_copy_of_the_bank(rng):
    bank, queries = normal(rng, (500, 16)), normal(rng, (50, 16))
    index = kernels.KnnIndex(bank)
    want = kernels.knn(queries, bank.copy(), 3)
    bank[:] = 0.0  # the caller's array changes: the index must not see it
    got = index.search(queries, 3)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert not index.bank.flags.writeable
    with pytest.raises(ValueError):
        index.bank[0, 0] = 1.0
    # the copy and the packed panels (of bfloat16 pairs where the index scans in bfloat16: half)
    assert index.nbytes >= (1.5 if index.isa == "avx512bf16" else 2) * 500 * 16 * 4


def test_index_concurrent_searches_equal_serial(rng):
    bank = normal(rng, (6000, 48), offset=1.0).astype(np.float16)
    index = kernels.KnnIndex(bank)
    jobs = [(normal(rng, (n, 48), offset=1.0), k) for n, k in
            [(700, 1), (3, 5), (256, 2), (1, 100), (1500, 1), (40, 9), (900, 3), (17, 1)]]
    serial = [index.search(qs, k) for qs, k in jobs]
    before = edge_sdk.get_num_threads()
    try:
        for threads in (1, 2):
            edge_sdk.set_num_threads(threads)
            with ThreadPoolExecutor(max_workers=4) as ex:
                results = list(ex.map(lambda job: index.search(*job), jobs * 3))
            for (d, i), (want_d, want_i) in zip(results, serial * 3):
                assert np.array_equal(d, want_d) and np.array_equal(i, want_i)
    finally:
        edge_sdk.set_num_threads(before)


def test_index_bad_inputs_name_the_argument(rng):
    b = normal(rng, (10, 6))
    with pytest.raises(TypeError, match="bank: expected dtype float32 or float16, got float64"):
        kernels.KnnIndex(b.astype(np.float64))
    with pytest.raises(ValueError, match="bank: expected 2 dimensions"):
        kernels.KnnIndex(b[0])
    with pytest.raises(ValueError, match="bank: empty"):
        kernels.KnnIndex(b[:0])
    with pytest.raises(ValueError, match="bank: expected a C-contiguous"):
        kernels.KnnIndex(b[:, ::2])
    bad = b.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="bank: contains NaN"):
        kernels.KnnIndex(bad)
    with pytest.raises(ValueError, match="bank: contains NaN"):
        kernels.KnnIndex(bad.astype(np.float16))
    with pytest.raises(ValueError, match="bank: contains NaN or infinity, or values too large"):
        kernels.KnnIndex(b * np.float32(1e30))
    index = kernels.KnnIndex(b)
    q = normal(rng, (4, 6))
    with pytest.raises(TypeError, match="queries: expected dtype float32, got float64"):
        index.search(q.astype(np.float64))
    with pytest.raises(ValueError, match="queries: expected 6 columns"):
        index.search(q[:, :5].copy())
    with pytest.raises(ValueError, match="queries: empty"):
        index.search(q[:0])
    with pytest.raises(ValueError, match="k: expected 1 <= k <= 10"):
        index.search(q, 11)
    with pytest.raises(TypeError, match="k: expected an int"):
        index.search(q, 2.0)
    q[1, 1] = np.inf
    with pytest.raises(ValueError, match="queries: contains NaN"):
        index.search(q)
    with pytest.raises(ValueError, match="queries: row 0 contains NaN or infinity, or values too large"):
        index.search(normal(rng, (4, 6)) * np.float32(1e30))


def test_cuda_request_without_device_is_clear_error(rng):
    if any(d["kind"] == "cuda" for d in edge_sdk.devices()):
        pytest.skip("a CUDA device is present; covered by the GPU parity test")
    with pytest.raises(ValueError, match="CUDA"):
        kernels.knn(normal(rng, (2, 4)), normal(rng, (5, 4)), device="cuda:0")


def test_index_cuda_request_without_device_is_clear_error(rng):
    if any(d["kind"] == "cuda" for d in edge_sdk.devices()):
        pytest.skip("a CUDA device is present; covered by test_gpu_index_matches_gpu_knn")
    with pytest.raises(ValueError, match="CUDA"):
        kernels.KnnIndex(normal(rng, (5, 4)), device="cuda:0")
    with pytest.raises(ValueError, match="isa, extra: CPU options"):
        _core.KnnIndex(normal(rng, (5, 4)), "cuda:0", isa="avx2")


@requires_cuda
@pytest.mark.parametrize("half", [False, True])
def test_gpu_index_matches_gpu_knn(rng, half):
    bank = normal(rng, (20_000, 160))
    if half:
        bank = bank.astype(np.float16)
    index = kernels.KnnIndex(bank, device="cuda:0")
    assert index.device == "cuda:0" and index.isa == "cuda"
    for q, k in [(1000, 5), (1, 9), (3000, 1)]:
        queries = normal(rng, (q, 160))
        d, i = index.search(queries, k)
        want_d, want_i = kernels.knn(queries, bank, k, device="cuda:0")
        assert np.array_equal(d, want_d) and np.array_equal(i, want_i)


@requires_cuda
@pytest.mark.parametrize("half", [False, True])
def test_gpu_matches_cpu(rng, half):
    queries, bank = normal(rng, (1000, 160)), normal(rng, (20_000, 160))
    if half:
        bank = bank.astype(np.float16)
    d_cpu, i_cpu = kernels.knn(queries, bank, 5)
    d_gpu, i_gpu = kernels.knn(queries, bank, 5, device="cuda:0")
    np.testing.assert_allclose(d_gpu, d_cpu, rtol=1e-4)
    check_against_reference(queries[:50], bank.astype(np.float32), 5, d_gpu[:50], i_gpu[:50],
                            tie_rtol=1e-4, rtol=1e-4)
    # clustered data and a large k
    bank, centres = clustered(rng, 20, 100, 48, spread=1e-3, offset=10.0)
    queries = (centres[rng.integers(0, 20, 100)] + 1e-3).astype(np.float32)
    d_cpu, i_cpu = kernels.knn(queries, bank, 300)
    d_gpu, i_gpu = kernels.knn(queries, bank, 300, device="cuda:0")
    np.testing.assert_allclose(d_gpu, d_cpu, rtol=1e-4)
    assert np.all(np.diff(d_gpu, axis=1) >= 0)


def test_auto_scans_in_bfloat16_only_where_it_suits_the_bank(rng):
    """The bfloat16 scan (AVX512-BF16) gives the exact results of the float32 one. Its error bound
    grows with the bank's largest norm, and queries that it cannot certify are re-scanned, so
    `auto` keeps float32 where the bound is not small against the data's scale: here one value of
    500 in a bank of standard normal rows, which the loader admits (its float32 bound is small)."""
    if "avx512bf16" not in _core.knn_isas():
        pytest.skip("this CPU has no AVX512-BF16")
    plain = normal(rng, (3000, 64), offset=1.0)
    assert kernels.KnnIndex(plain).isa == "avx512bf16"
    outlier = plain.copy()
    outlier[7, 3] = 500.0
    assert kernels.KnnIndex(outlier).isa == "avx512"
    tight, centres = clustered(rng, 10, 300, 37, spread=1e-3, offset=20.0)
    for bank, queries in ((plain, normal(rng, (300, 64), offset=1.0)), (outlier, normal(rng, (300, 64), offset=1.0)),
                          (tight, (centres[rng.integers(0, 10, 40)] + 1e-3).astype(np.float32))):
        want = _core.KnnIndex(bank, isa="avx512").search(queries, 3)
        got = _core.KnnIndex(bank, isa="avx512bf16").search(queries, 3)  # re-scans to stay exact
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        check_against_reference(queries, bank, 3, *got)

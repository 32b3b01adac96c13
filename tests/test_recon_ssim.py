"""The training SSIM (torch) has exactly the runtime kernel's definition."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_sdk import kernels  # noqa: E402
from edge_sdk.models import ssim_loss  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("shape", [(1, 11, 11), (3, 40, 33), (2, 1, 64, 64), (2, 3, 29, 31), (4, 1, 128, 128)])
def test_matches_kernel(rng, shape):
    a = rng.random(shape).astype(np.float32)
    b = np.clip(a + 0.2 * rng.standard_normal(shape), 0, 1).astype(np.float32)
    ref, ref_map = kernels.ssim(a, b, return_map=True)
    ours = ssim_loss.ssim(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    ours_map = ssim_loss.ssim_map(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(ours_map.reshape(ref_map.shape), ref_map, atol=1e-4, rtol=0)


@pytest.mark.parametrize("window,sigma,k1,k2,data_range", [(7, 1.0, 0.01, 0.03, 1.0), (5, 2.0, 0.02, 0.05, 255.0)])
def test_matches_kernel_other_parameters(rng, window, sigma, k1, k2, data_range):
    a = (rng.random((3, 24, 30)) * data_range).astype(np.float32)
    b = (rng.random((3, 24, 30)) * data_range).astype(np.float32)
    params = dict(window=window, sigma=sigma, k1=k1, k2=k2, data_range=data_range)
    ref = kernels.ssim(a, b, **params)
    ours = ssim_loss.ssim(torch.from_numpy(a), torch.from_numpy(b), **params).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


def test_gradient_matches_finite_differences(rng):
    a = torch.from_numpy(rng.random((1, 1, 13, 13))).double()
    b = torch.from_numpy(rng.random((1, 1, 13, 13))).double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda y: ssim_loss.ssim(a, y), (b,), eps=1e-6, atol=1e-5)


def test_loss_is_zero_for_identical_images(rng):
    a = torch.from_numpy(rng.random((2, 1, 32, 32)).astype(np.float32))
    assert float(ssim_loss.SSIMLoss()(a, a.clone())) == pytest.approx(0.0, abs=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="window"):
        ssim_loss.SSIMLoss(window=4)
    with pytest.raises(ValueError, match="sigma"):
        ssim_loss.SSIMLoss(sigma=0.0)
    with pytest.raises(ValueError, match="shapes differ"):
        ssim_loss.ssim(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 17))
    with pytest.raises(ValueError, match="smaller than window"):
        ssim_loss.ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))

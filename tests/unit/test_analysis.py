"""Analysis: OD, XMCD with error maps, registration, region spectra, on known arrays."""

import numpy as np
import pytest
from scipy import ndimage

from stxm_ctrl.analysis import (
    i0_mask,
    optical_density,
    register_frames,
    roi_spectrum,
    xmcd,
)
from stxm_ctrl.analysis.xmcd import dead_time_corrected

RNG = np.random.default_rng(7)


def test_optical_density_against_an_i0_region():
    x = np.linspace(-1, 1, 21)
    y = np.linspace(-1, 1, 11)
    od_true = np.where(x[None, :] < 0.5, 0.4, 0.0) * np.ones((11, 1))
    counts = RNG.poisson(1e5 * np.exp(-od_true))
    mask = i0_mask(x, y, (0.6, 1.0, -1, 1))
    result = optical_density(counts, mask, dwell_s=0.01, x_um=x, y_um=y)
    pulls = (result.od - od_true)[:, :10] / result.od_error[:, :10]
    assert abs(pulls.mean()) < 0.6 and 0.7 < pulls.std() < 1.3  # pulls share one I0
    assert result.i0_rate_Hz == pytest.approx(1e7, rel=0.01)
    with pytest.raises(ValueError, match="holds no pixel"):
        i0_mask(x, y, (5, 6, 5, 6))


def test_xmcd_asymmetry_and_its_error_are_poisson_right():
    a_true = 0.02
    mean = 5e4
    plus = RNG.poisson(mean * (1 + a_true), size=(40, 40))
    minus = RNG.poisson(mean * (1 - a_true), size=(40, 40))
    result = xmcd(plus, minus)
    pulls = (result.asymmetry - a_true) / result.asymmetry_error
    assert abs(pulls.mean()) < 0.1 and 0.9 < pulls.std() < 1.1
    assert np.nanmean(result.log_ratio) == pytest.approx(np.log(1.02 / 0.98), abs=1e-3)


def test_dead_time_correction_inverts_the_counter():
    true = np.array([1e5, 1e7])
    measured = true / (1 + true * 6e-9)
    assert dead_time_corrected(measured, 6.0) == pytest.approx(true)


def test_registration_recovers_injected_drift_to_a_fifth_of_a_pixel():
    # Frames cut from a larger sample, as drift moves the field of view: not periodic.
    sample = ndimage.gaussian_filter(RNG.random((128, 128)), 2)
    sample = 1e4 * (1 + 0.2 * (sample - sample.mean()) / sample.std())
    injected = np.array([[0, 0], [1.3, -0.7], [2.6, -1.4], [-0.4, 2.2]])
    frames = [
        RNG.poisson(np.clip(ndimage.shift(sample, s, order=3)[32:96, 32:96], 1, None))
        for s in injected
    ]
    result = register_frames(np.array(frames, dtype=float), upsample=20)
    # The shift that undoes each frame's drift is its negative.
    assert np.abs(result.shifts_px + injected).max() < 0.2, result.shifts_px
    # Aligned, the frames agree with the first away from the edges the shift wraps.
    inner = (slice(8, -8), slice(8, -8))
    before = np.abs(frames[2][inner] - frames[0][inner]).mean()
    after = np.abs(result.frames[2][inner] - result.frames[0][inner]).mean()
    assert after < 0.5 * before


def test_roi_spectrum_of_a_stack():
    energies = np.array([700.0, 706.8, 710.0])
    od = np.array([0.07, 0.43, 0.2])
    counts = np.ones((3, 8, 8)) * 1e5
    counts[:, :4, :] *= np.exp(-od)[:, None, None]
    counts = RNG.poisson(counts).astype(float)
    region = np.zeros((8, 8), bool)
    region[:4] = True
    spectrum = roi_spectrum(energies, counts, region, dwell_s=0.01, i0_region=~region)
    assert spectrum.od == pytest.approx(od, abs=5 * spectrum.od_error.max())
    assert spectrum.pixels == 32

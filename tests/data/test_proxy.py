"""The proxy (validation) split: ``random`` unchanged, ``blocked`` shares no raw sample with test.

The USC-HAD release here is written by the test with scipy.io.savemat in the release's layout;
every reading carries its origin (channel 0 = subject*1000 + activity*10 + trial, channel 1 =
the sample's index in its trial), so which raw samples a window holds can be read off its values,
even after normalisation (an affine map per channel, inverted with the training statistics).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from fedmobile_actors.data.dataset import MultimodalDataset
from fedmobile_actors.data.loading import load_split, take_blocked
from fedmobile_actors.data.proxy import (
    WindowPositions,
    block_size,
    blocked_indices,
    shares_samples,
)
from fedmobile_actors.data.usc_had import load_usc_had, load_usc_had_split
from fedmobile_actors.errors import DataError
from fedmobile_actors.scenario.schema import DataConfig, NpzSource, SyntheticSource, UscHadSource
from fedmobile_actors.seeding import SERVER, rng

WINDOW, STRIDE = 10, 5  # half overlap: one window on each side of a block shares its samples
SUBJECTS = (1, 2)


def trial_length(s: int, a: int, t: int) -> int:
    return 30 + 4 * a + 2 * t + s  # 7 to 17 windows per trial


def write_release(root: Path) -> Path:
    for s in SUBJECTS:
        folder = root / f"Subject{s}"
        folder.mkdir(parents=True)
        for a in range(1, 13):
            for t in range(1, 6):
                n = trial_length(s, a, t)
                readings = np.zeros((n, 6))
                readings[:, 0] = s * 1000 + a * 10 + t
                readings[:, 1] = np.arange(n)
                readings[:, 2:] = np.arange(n)[:, None] % 7
                scipy.io.savemat(folder / f"a{a}t{t}.mat", {"sensor_readings": readings})
    return root


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_release(tmp_path_factory.mktemp("usc-proxy"))


def config(release: Path, cache: Path, **kw: object) -> DataConfig:
    source = UscHadSource(
        path=str(release),
        window=WINDOW,
        stride=STRIDE,
        subjects=SUBJECTS,
        test_split="trial",
        cache_dir=str(cache),
    )
    return DataConfig.model_validate({"source": source, "proxy_fraction": 0.2, **kw})


def origins(data: MultimodalDataset, raw_train: MultimodalDataset) -> WindowPositions:
    """Recording and start of each normalised window, read off channels 0 and 1 of acc."""
    x = raw_train.modalities["acc"]
    mean = x.mean(axis=(0, 2))
    std = x.std(axis=(0, 2)) + 1e-6
    z = data.modalities["acc"][:, :2, 0].astype(np.float64)
    raw = np.rint(z * std[:2] + mean[:2]).astype(np.int64)
    return WindowPositions(raw[:, 0], raw[:, 1], WINDOW)


def test_loader_positions_match_the_samples_each_window_holds(
    release: Path, tmp_path: Path
) -> None:
    """recording = subject*1000 + activity*10 + trial and start = index of the first sample."""
    _, test, positions = load_usc_had_split(config(release, tmp_path).source, ".")
    acc = test.modalities["acc"]
    assert np.array_equal(positions.recording, acc[:, 0, 0].astype(np.int64))
    assert np.array_equal(positions.start, acc[:, 1, 0].astype(np.int64))
    assert np.array_equal(acc[:, 1, -1] - acc[:, 1, 0], np.full(len(acc), WINDOW - 1))


def test_random_proxy_shares_samples_with_test(release: Path, tmp_path: Path) -> None:
    """The defect: with half-overlapping windows most random proxy windows touch test samples."""
    cfg = config(release, tmp_path)
    raw_train, _ = load_usc_had(cfg.source, ".")
    split = load_split(cfg, seed=0)
    assert split.proxy is not None
    shared = shares_samples(origins(split.proxy, raw_train), origins(split.test, raw_train))
    assert shared.mean() > 0.5


def test_blocked_proxy_shares_no_sample_with_test(release: Path, tmp_path: Path) -> None:
    """Read off the windows' own values: no proxy sample index falls inside a test window."""
    cfg = config(release, tmp_path, proxy_split="blocked")
    raw_train, _ = load_usc_had(cfg.source, ".")
    for seed in range(4):
        split = load_split(cfg, seed=seed)
        assert split.proxy is not None
        proxy, test = origins(split.proxy, raw_train), origins(split.test, raw_train)
        for r in np.unique(proxy.recording):
            proxy_samples = {
                int(s) + i for s in proxy.start[proxy.recording == r] for i in range(WINDOW)
            }
            test_samples = {
                int(s) + i for s in test.start[test.recording == r] for i in range(WINDOW)
            }
            assert not proxy_samples & test_samples


def test_blocked_sizes_are_a_rounded_block_per_recording_and_one_gap_each_side(
    release: Path, tmp_path: Path
) -> None:
    """Per held-out recording of n windows: round-half-up(0.2 n) consecutive proxy windows; with
    stride = window/2 one window on each side of the block (inside the recording) is dropped."""
    cfg = config(release, tmp_path, proxy_split="blocked")
    raw_train, raw_test = load_usc_had(cfg.source, ".")
    split = load_split(cfg, seed=3)
    assert split.proxy is not None
    held = WindowPositions(
        raw_test.modalities["acc"][:, 0, 0].astype(np.int64),
        raw_test.modalities["acc"][:, 1, 0].astype(np.int64),
        WINDOW,
    )
    proxy, test = origins(split.proxy, raw_train), origins(split.test, raw_train)
    for r in np.unique(held.recording):
        n = int((held.recording == r).sum())
        starts = np.sort(proxy.start[proxy.recording == r])
        assert len(starts) == block_size(n, 0.2) == int(np.floor(0.2 * n + 0.5))
        assert np.all(np.diff(starts) == STRIDE)  # one contiguous block
        first, last = starts[0] // STRIDE, starts[-1] // STRIDE
        gaps = int(first > 0) + int(last < n - 1)
        assert (test.recording == r).sum() == n - len(starts) - gaps


def test_blocked_is_deterministic_and_its_position_follows_the_seed(
    release: Path, tmp_path: Path
) -> None:
    cfg = config(release, tmp_path, proxy_split="blocked")
    a, b, c = load_split(cfg, seed=5), load_split(cfg, seed=5), load_split(cfg, seed=6)
    assert a.proxy is not None and b.proxy is not None and c.proxy is not None
    assert np.array_equal(a.proxy.modalities["acc"], b.proxy.modalities["acc"])
    assert np.array_equal(a.test.modalities["gyro"], b.test.modalities["gyro"])
    assert not np.array_equal(a.proxy.modalities["acc"], c.proxy.modalities["acc"])


def test_default_random_split_is_the_unchanged_permutation(release: Path, tmp_path: Path) -> None:
    """The default keeps today's draw: a permutation of the held-out windows from the "proxy"
    stream, its first int(0.2 n) (at least 1) taken, both sides in their original order."""
    cfg = config(release, tmp_path)
    assert cfg.proxy_split == "random"
    whole = load_split(config(release, tmp_path, proxy_fraction=0.0), seed=2).test
    split = load_split(cfg, seed=2)
    assert split.proxy is not None
    order = rng(2, SERVER, 0, "proxy").permutation(len(whole))
    cut = max(1, int(len(whole) * 0.2))
    for name in ("acc", "gyro"):
        assert np.array_equal(
            split.proxy.modalities[name], whole.modalities[name][np.sort(order[:cut])]
        )
        assert np.array_equal(
            split.test.modalities[name], whole.modalities[name][np.sort(order[cut:])]
        )


def test_synthetic_blocked_is_the_random_split() -> None:
    """Synthetic windows are drawn independently, so they share no samples: same draw."""
    source = SyntheticSource(samples=200)
    random = load_split(DataConfig(source=source, proxy_fraction=0.3), seed=1)
    blocked = load_split(
        DataConfig(source=source, proxy_fraction=0.3, proxy_split="blocked"), seed=1
    )
    assert random.proxy is not None and blocked.proxy is not None
    assert np.array_equal(random.proxy.labels, blocked.proxy.labels)
    assert np.array_equal(random.proxy.modalities["acc"], blocked.proxy.modalities["acc"])


def write_npz(tmp_path: Path, groups: bool) -> Path:
    """120 windows; with groups, 12 recordings of 10 windows (also written as subjects, which
    survive normalisation, so a loaded window's recording can be read back)."""
    n = 120
    recording = np.arange(n) // 10
    arrays: dict[str, np.ndarray] = {
        "acc": np.random.default_rng(0).normal(size=(n, 3, 8)).astype(np.float32),
        "labels": np.arange(n) % 3,
        "subjects": recording,
    }
    if groups:
        arrays["groups"] = recording
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def test_npz_blocked_takes_whole_groups(tmp_path: Path) -> None:
    """With 'groups', proxy and test hold different recordings and no window is dropped."""
    cfg = DataConfig(
        source=NpzSource(path=str(write_npz(tmp_path, groups=True))),
        test_fraction=0.5,
        proxy_fraction=0.2,
        proxy_split="blocked",
    )
    split = load_split(cfg, seed=0)
    whole = load_split(cfg.model_copy(update={"proxy_fraction": 0.0}), seed=0).test
    assert split.proxy is not None
    assert not set(split.proxy.subjects.tolist()) & set(split.test.subjects.tolist())
    assert len(split.proxy) + len(split.test) == len(whole) == 60
    assert len(split.proxy) == 20  # whole groups of 10 until round(0.2 * 60) = 12 are reached


def test_npz_blocked_without_groups_is_a_one_line_error(tmp_path: Path) -> None:
    cfg = DataConfig(
        source=NpzSource(path=str(write_npz(tmp_path, groups=False))),
        proxy_fraction=0.2,
        proxy_split="blocked",
    )
    with pytest.raises(DataError, match="needs the recording of each held-out window") as err:
        load_split(cfg, seed=0)
    assert "\n" not in str(err.value)


def test_blocked_proxy_too_small_for_the_recordings_is_an_error() -> None:
    """Recordings of 2 windows at fraction 0.2 give no proxy window: said, not silently empty."""
    positions = WindowPositions(np.repeat(np.arange(5), 2), np.tile([0, 5], 5), WINDOW)
    assert len(blocked_indices(positions, 0.2, seed=0)[0]) == 0
    data = MultimodalDataset(
        {"acc": np.zeros((10, 1, WINDOW), dtype=np.float32)},
        np.zeros(10, dtype=np.int64),
        np.zeros(10, dtype=np.int64),
        2,
    )
    with pytest.raises(DataError, match="leaves the proxy set empty"):
        take_blocked(data, 0.2, 0, positions, None)


def test_shares_samples_is_start_distance_below_the_window() -> None:
    """Same recording and starts closer than a window share a sample; other recordings never."""
    windows = WindowPositions(np.array([1, 1, 1, 2]), np.array([0, 20, 41, 0]), WINDOW)
    others = WindowPositions(np.array([1, 1]), np.array([9, 30]), WINDOW)
    assert shares_samples(windows, others).tolist() == [True, False, False, False]


@pytest.mark.parametrize(("stride", "gap"), [(10, 0), (5, 1), (3, 3), (1, 9)])
def test_blocked_drops_ceil_window_over_stride_minus_one_each_side(stride: int, gap: int) -> None:
    """One recording of 50 windows: 10 proxy, ``gap`` dropped per side away from the edges,
    and no remaining test window shares a sample with the block, for any block position."""
    positions = WindowPositions(np.zeros(50, dtype=np.int64), np.arange(50) * stride, WINDOW)
    for seed in range(6):
        proxy, test = blocked_indices(positions, 0.2, seed)
        assert len(proxy) == 10 and np.all(np.diff(proxy) == 1)
        sides = int(proxy[0] > 0) * min(gap, int(proxy[0])) + int(proxy[-1] < 49) * min(
            gap, 49 - int(proxy[-1])
        )
        assert len(test) == 40 - sides
        assert not shares_samples(positions.subset(proxy), positions.subset(test)).any()

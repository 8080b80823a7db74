"""MNIST-scatter: boxes against the pixels, counts and clipping, disjoint pools, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cc_bench.envs.mnist_scatter import (
    MnistScatter,
    draw_canvases,
    make_mnist_scatter,
    mnist5k_pools,
)
from cc_bench.errors import UserError


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CC_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def official() -> MnistScatter:
    """200 canvases with the official recipe (5 digits, 120 -> 64), not cached."""
    return make_mnist_scatter(200, 3, cache=False)


def ink_box(image: np.ndarray) -> list[float]:
    """The tight xyxy box of an image's non-zero pixels, by the plain definition."""
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    return [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]


def test_shapes_ranges_and_types(official: MnistScatter) -> None:
    assert official.images.shape == (200, 1, 64, 64)
    assert official.images.dtype == torch.float32
    assert 0 <= official.images.min() and official.images.max() <= 1
    assert len(official.boxes) == len(official.labels) == 200
    for boxes, labels in zip(official.boxes, official.labels, strict=True):
        assert boxes.shape == (len(labels), 4) and boxes.dtype == torch.float32
        assert labels.dtype == torch.int64 and ((labels >= 0) & (labels <= 9)).all()


def test_a_lone_digit_s_box_is_the_tight_box_of_the_image_s_ink() -> None:
    data = make_mnist_scatter(300, 0, n_digits=1, cache=False)
    boxed = 0
    for image, boxes in zip(data.images[:, 0].numpy(), data.boxes, strict=True):
        if len(boxes) == 0:
            assert not image.any()  # a digit the crop removed is not drawn at all
            continue
        boxed += 1
        assert boxes.tolist() == [ink_box(image)]
    assert 100 < boxed < 300  # the crop removes some digits, keeps most


def test_no_ink_outside_every_box_and_every_box_edge_touches_ink(official: MnistScatter) -> None:
    for image, boxes in zip(official.images[:, 0].numpy(), official.boxes, strict=True):
        covered = np.zeros_like(image, dtype=bool)
        for x0, y0, x1, y1 in boxes.long().tolist():
            covered[y0:y1, x0:x1] = True
            # Tight: the first and last rows and columns of the box all hold ink.
            inside = image[y0:y1, x0:x1]
            assert inside[0].any() and inside[-1].any()
            assert inside[:, 0].any() and inside[:, -1].any()
        assert not image[~covered].any()


def test_counts_and_clipping(official: MnistScatter) -> None:
    counts = np.array([len(b) for b in official.boxes])
    assert counts.min() >= 0 and counts.max() <= 5
    assert 2.0 < counts.mean() < 3.5  # the crop keeps about 2.75 of 5 digits
    boxes = torch.cat(official.boxes)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 64).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    sides = boxes[:, 2:] - boxes[:, :2]
    assert sides.max() <= 25
    # Digits cut by the crop: boxes on each border, some of them thinner than any whole digit.
    assert (boxes[:, 0] == 0).any() and (boxes[:, 1] == 0).any()
    assert (boxes[:, 2] == 64).any() and (boxes[:, 3] == 64).any()
    assert (sides.min(dim=1).values < 4).any()


def test_without_a_crop_every_digit_is_whole_and_boxed() -> None:
    data = make_mnist_scatter(50, 1, canvas=64, crop=64, cache=False)
    assert all(len(b) == 5 for b in data.boxes)
    sides = torch.cat(data.boxes)
    sides = sides[:, 2:] - sides[:, :2]
    assert sides.max() <= 25 and sides.min() >= 1
    # A 15-25 px digit's ink is at least a few pixels tall (MNIST's frame is 28 px).
    assert (sides[:, 1] >= 8).all()


def test_pools_are_disjoint_and_stratified() -> None:
    pools = mnist5k_pools()
    (x_train, y_train), (x_test, y_test) = pools["train"], pools["test"]
    assert len(y_train) == 4000 and len(y_test) == 1000
    assert np.bincount(y_train).tolist() == [400] * 10
    assert np.bincount(y_test).tolist() == [100] * 10
    train_digits = {d.tobytes() for d in x_train}
    assert not any(d.tobytes() in train_digits for d in x_test)


def test_deterministic_cached_and_seeded(cache: Path) -> None:
    first = make_mnist_scatter(20, 5)
    assert len(list(cache.rglob("*.pt"))) == 1
    again = make_mnist_scatter(20, 5)  # from the cache
    fresh = make_mnist_scatter(20, 5, cache=False)  # generated again
    for other in (again, fresh):
        assert torch.equal(first.images, other.images)
        assert all(torch.equal(a, b) for a, b in zip(first.boxes, other.boxes, strict=True))
        assert all(torch.equal(a, b) for a, b in zip(first.labels, other.labels, strict=True))
    assert not torch.equal(first.images, make_mnist_scatter(20, 6).images)
    assert not torch.equal(first.images, make_mnist_scatter(20, 5, split="test").images)
    assert len(list(cache.rglob("*.pt"))) == 3


def test_bad_parameters_and_missing_mnist_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data_root"):
        make_mnist_scatter(2, 0, source="mnist")
    missing = tmp_path / "nowhere"
    with pytest.raises(UserError, match=str(missing)):
        make_mnist_scatter(2, 0, source="mnist", data_root=str(missing))
    assert not missing.exists()  # nothing downloaded unless asked
    with pytest.raises(UserError, match="min_size"):
        make_mnist_scatter(2, 0, min_size=30, max_size=20)


def test_picture_of_canvases(official: MnistScatter) -> None:
    fig = draw_canvases(official.images[:6], official.boxes[:6], official.labels[:6], title="t")
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    assert width > 300 and height > 200

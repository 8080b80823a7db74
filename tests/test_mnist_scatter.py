"""MNIST-scatter: boxes against the pixels, counts and clipping, disjoint pools, determinism."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from cc_bench.envs.mnist_scatter import (
    INK_THRESHOLD,
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
    assert 2.0 < counts.mean() < 3.5  # the crop keeps about 3.3 of 5 digits
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
    with pytest.raises(UserError, match="min_visible=0"):
        make_mnist_scatter(200, 0, min_visible=0)
    with pytest.raises(UserError, match="seed=-1"):
        make_mnist_scatter(2, -1)


def test_picture_of_canvases_draws_every_box_and_label(official: MnistScatter) -> None:
    from matplotlib.patches import Rectangle

    shown = slice(0, 6)
    boxes, labels = official.boxes[shown], official.labels[shown]
    fig = draw_canvases(official.images[shown], boxes, labels, title="t")
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    assert width > 300 and height > 200
    assert sum(len(b) for b in boxes) > 10
    for ax, truth, digits in zip(fig.axes, boxes, labels, strict=False):
        rectangles = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(rectangles) == len(truth)
        # Each rectangle's corner and size are its box's, moved half a pixel (imshow's grid).
        drawn = sorted(
            (r.get_x() + 0.5, r.get_y() + 0.5, r.get_width(), r.get_height()) for r in rectangles
        )
        expected = sorted((x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in truth.tolist())
        assert np.allclose(drawn, expected)
        assert sorted(t.get_text() for t in ax.texts) == sorted(str(int(d)) for d in digits)
    assert all(not ax.patches and not ax.texts for ax in fig.axes[6:])  # the empty panels
    # Predictions: one more (dashed) rectangle and one score text per predicted box.
    predicted = [b[:1] + 1 for b in boxes]
    fig = draw_canvases(
        official.images[shown], boxes, None, predicted=predicted, scores=[torch.tensor([0.75])] * 6
    )
    for ax, truth, guess in zip(fig.axes, boxes, predicted, strict=False):
        assert len(ax.patches) == len(truth) + len(guess)
        assert [t.get_text() for t in ax.texts] == ["0.75"] * len(guess)


def own_ink_boxes(
    n: int, seed: int, canvas: int, n_digits: int, min_size: int, max_size: int
) -> tuple[list[list[list[float]]], np.ndarray]:
    """The recipe again (no crop), each digit drawn alone: its ink box, and the canvases as
    the sum of the lone digits clipped to 255 (the official loader's). Each digit is first cut
    to the rows and columns where it has ink, as the official loader does. Replays the
    generator's draws from its seeded stream."""
    import cv2

    x, _ = mnist5k_pools()["train"]
    rng = np.random.default_rng([seed, 0])
    boxes, canvases = [], np.zeros((n, canvas, canvas), dtype=np.uint8)
    for k in range(n):
        which = rng.integers(0, len(x), n_digits)
        sizes = rng.integers(min_size, max_size + 1, (n_digits, 2))
        corners = rng.integers(0, canvas - sizes + 1)
        per = []
        for d in range(n_digits):
            (h, w), (r, c) = sizes[d], corners[d]
            alone = np.zeros((canvas, canvas), dtype=np.uint8)
            digit = x[which[d]]
            rows, cols = np.where(digit.sum(1) > 0)[0], np.where(digit.sum(0) > 0)[0]
            digit = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            picture = cv2.resize(digit, (int(w), int(h)), interpolation=cv2.INTER_AREA)
            alone[r : r + h, c : c + w] = np.where(picture >= INK_THRESHOLD, picture, 0)
            per.append(ink_box(alone))
            canvases[k] = np.clip(canvases[k].astype(int) + alone, 0, 255)
        boxes.append(per)
    return boxes, canvases


def test_overlapping_digits_each_keep_the_tight_box_of_their_own_ink() -> None:
    # Six 15-25 px digits on a 40x40 canvas, no crop: most of them overlap.
    data = make_mnist_scatter(30, 2, canvas=40, crop=40, n_digits=6, cache=False)
    expected, canvases = own_ink_boxes(30, 2, canvas=40, n_digits=6, min_size=15, max_size=25)
    overlapping = 0
    for boxes, truth in zip(data.boxes, expected, strict=True):
        assert boxes.tolist() == truth
        inter = (
            (
                torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
                - torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
            )
            .clamp(min=0)
            .prod(-1)
        )  # (6, 6) intersection areas
        overlapping += int((inter.triu(diagonal=1) > 20).sum())
    assert overlapping > 100
    # Binary (the default): every ink pixel white, as the official loader's sum of 0-255
    # pictures clipped to 1 makes it; grey: the sum clipped to 255.
    white = np.where(canvases > 0, 255, 0)
    assert np.array_equal((data.images[:, 0] * 255).round().byte().numpy(), white)
    grey = make_mnist_scatter(30, 2, canvas=40, crop=40, n_digits=6, binary=False, cache=False)
    assert np.array_equal((grey.images[:, 0] * 255).round().byte().numpy(), canvases)
    assert all(torch.equal(g, b) for g, b in zip(grey.boxes, data.boxes, strict=True))


def fake_mnist(root: Path, seed: int, n: int = 20) -> None:
    """A tiny MNIST in torchvision's raw layout (idx files): random 28x28 pictures."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix in ("train", "t10k"):
        pictures = (rng.random((n, 28, 28)) > 0.6).astype(np.uint8) * 255
        classes = rng.integers(0, 10, n).astype(np.uint8)
        header = struct.pack(">IIII", 2051, n, 28, 28)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + pictures.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + classes.tobytes()
        )


def test_mnist_cache_follows_the_data_root_and_its_files(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "mnist"
    fake_mnist(root, 0)
    first = make_mnist_scatter(4, 0, source="mnist", data_root=str(root))
    assert len(list(cache.rglob("*.pt"))) == 1
    # Cached, but the digits are looked for first: a missing folder is still an error.
    missing = tmp_path / "does-not-exist"
    with pytest.raises(UserError, match=str(missing)):
        make_mnist_scatter(4, 0, source="mnist", data_root=str(missing))
    again = make_mnist_scatter(4, 0, source="mnist", data_root=str(root))
    assert torch.equal(first.images, again.images) and len(list(cache.rglob("*.pt"))) == 1
    # The same files in another folder: another cache entry, the same canvases.
    shutil.copytree(root, tmp_path / "copy")
    copied = make_mnist_scatter(4, 0, source="mnist", data_root=str(tmp_path / "copy"))
    assert torch.equal(first.images, copied.images) and len(list(cache.rglob("*.pt"))) == 2
    # Other digits under the same paths: regenerated, not served from the cache.
    fake_mnist(root, 1)
    changed = make_mnist_scatter(4, 0, source="mnist", data_root=str(root))
    assert not torch.equal(first.images, changed.images)
    assert len(list(cache.rglob("*.pt"))) == 3


def test_a_home_relative_data_root_follows_its_files_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    # torchvision expands `~`; the cache's fingerprint must read the same files.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    fake_mnist(tmp_path / "home" / "data", 0)
    first = make_mnist_scatter(4, 0, source="mnist", data_root="~/data")
    fake_mnist(tmp_path / "home" / "data", 1)
    changed = make_mnist_scatter(4, 0, source="mnist", data_root="~/data")
    assert not torch.equal(first.images, changed.images)
    assert len(list(cache.rglob("*.pt"))) == 2


@pytest.mark.parametrize("download", [False, True])
@pytest.mark.parametrize("damage", ["not idx", "cut short"])
def test_damaged_mnist_files_are_a_user_error_naming_the_folder(
    tmp_path: Path, damage: str, download: bool
) -> None:
    raw = tmp_path / "data" / "MNIST" / "raw"
    fake_mnist(tmp_path / "data", 0)
    for f in raw.iterdir():
        # A valid header over too few pictures fails in torchvision's reshape, not its checks.
        f.write_bytes(b"not an idx file" if damage == "not idx" else f.read_bytes()[:-100])
    # with --download too: torchvision downloads nothing over files that are there
    with pytest.raises(UserError, match=f"unreadable MNIST files under {raw}"):
        make_mnist_scatter(
            2, 0, source="mnist", data_root=str(tmp_path / "data"), download=download
        )


@pytest.mark.parametrize("root_exists", [False, True])
def test_a_failed_download_gives_its_reason_and_leaves_no_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root_exists: bool
) -> None:
    from torchvision.datasets import MNIST

    # Port 9 (discard) on this machine refuses the connection at once.
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    root = tmp_path / "data"
    if root_exists:
        root.mkdir()
    with pytest.raises(UserError) as failed:
        make_mnist_scatter(2, 0, source="mnist", data_root=str(root), download=True)
    message = str(failed.value)
    assert "\n" not in message and not message.rstrip().endswith(":"), message
    assert "train-images-idx3-ubyte.gz" in message and "refused" in message.lower(), message
    assert root.exists() == root_exists
    assert not (root / "MNIST").exists()


def test_a_digit_the_crop_leaves_with_fewer_than_min_visible_pixels_has_no_box() -> None:
    # The same seed draws the same digits, sizes and places whatever min_visible is: only
    # which digits are drawn and boxed differs.
    every = make_mnist_scatter(300, 7, min_visible=1, cache=False)
    default = make_mnist_scatter(300, 7, cache=False)  # min_visible=4
    assert sum(len(b) for b in default.boxes) < sum(len(b) for b in every.boxes)
    dropped = lone = thin = 0
    for k in range(300):
        image1 = every.images[k, 0].numpy()
        image4 = default.images[k, 0].numpy()
        boxes1 = every.boxes[k].long().tolist()
        boxes4 = default.boxes[k].long().tolist()
        labels1, labels4 = every.labels[k].tolist(), default.labels[k].tolist()
        # The default's digits are min_visible=1's in the same order, less some.
        kept, j = [], 0
        for box, label in zip(boxes1, labels1, strict=True):
            matched = j < len(boxes4) and (box, label) == (boxes4[j], labels4[j])
            kept.append(matched)
            j += matched
        assert j == len(boxes4), k
        gone = np.zeros_like(image1, dtype=bool)  # the boxes of the digits left out
        for d, (x0, y0, x1, y1) in enumerate(boxes1):
            # Every box holds at least its own digit's ink (non-zero, even where covered).
            ink = int(np.count_nonzero(image1[y0:y1, x0:x1]))
            if ink < 4:
                thin += 1
                assert not kept[d], (k, d)  # fewer than 4 pixels of ink: left out
            if kept[d]:
                continue
            dropped += 1
            gone[y0:y1, x0:x1] = True
            # Pixels of this box in no other box are this digit's own ink alone.
            others = np.zeros_like(image1, dtype=bool)
            for e, (a0, b0, a1, b1) in enumerate(boxes1):
                if e != d:
                    others[b0:b1, a0:a1] = True
            own = image1 * ~others
            assert np.count_nonzero(own[y0:y1, x0:x1]) < 4, (k, d)
            if not others[y0:y1, x0:x1].any():  # overlaps nothing: all its pixels are its ink
                lone += 1
                assert 1 <= ink < 4, (k, d)
        # The digits left out are not drawn: the canvases differ only by their ink.
        assert (image4 <= image1).all()
        extra = image1 != image4
        assert not extra[~gone].any(), k
        assert np.count_nonzero(extra) <= 3 * (len(boxes1) - len(boxes4)), k
        # Under the default no box holds fewer than 4 non-zero pixels.
        for x0, y0, x1, y1 in boxes4:
            assert np.count_nonzero(image4[y0:y1, x0:x1]) >= 4, k
    assert dropped == sum(len(b) for b in every.boxes) - sum(len(b) for b in default.boxes)
    assert lone >= 5 and thin >= 5  # enough digits checked pixel by pixel

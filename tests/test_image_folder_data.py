"""gan.image_folder's data and measures: folders the tests write, torchvision and scipy as the
references, and every bad folder rejected with one UserError naming it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.distance import pdist
from torchvision import transforms

from cc_bench.errors import UserError
from cc_bench.gan.image_folder_data import (
    SYNTHETIC_SORT_OF_CLEVR,
    list_images,
    load_data,
    load_images,
)
from cc_bench.gan.image_folder_measures import (
    interpolation_smoothness,
    mean_pairwise_distance,
    sample_diversity,
)


def _write(path: Path, h: int, w: int, seed: int) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return rgb


def _reference(path: Path) -> np.ndarray:
    tf = transforms.Compose([transforms.Resize(64), transforms.CenterCrop(64)])
    return np.asarray(tf(Image.open(path).convert("RGB")))


def test_a_flat_folder_is_resized_and_centre_cropped_as_torchvision_does(tmp_path: Path) -> None:
    paths = [tmp_path / "b.png", tmp_path / "a.jpg", tmp_path / "c.PNG"]
    for k, (path, (h, w)) in enumerate(zip(paths, [(80, 120), (64, 64), (150, 70)], strict=True)):
        _write(path, h, w, k)
    (tmp_path / "notes.txt").write_text("not an image")
    images = load_images(tmp_path, n=10)
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.uint8
    for image, path in zip(images, sorted(paths), strict=True):
        np.testing.assert_array_equal(image, _reference(path))


def test_class_subfolders_are_read_as_image_folder(tmp_path: Path) -> None:
    _write(tmp_path / "bedroom" / "x1.png", 70, 90, 0)
    _write(tmp_path / "bedroom" / "deeper" / "x2.png", 70, 90, 1)
    _write(tmp_path / "kitchen" / "y.png", 70, 90, 2)
    files = list_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        "bedroom/x1.png",
        "bedroom/deeper/x2.png",
        "kitchen/y.png",
    ]


def test_a_sample_of_n_is_the_same_every_time(tmp_path: Path) -> None:
    for k in range(6):
        _write(tmp_path / f"{k}.png", 64, 64, k)
    first = load_images(tmp_path, n=3)
    assert first.shape[0] == 3
    np.testing.assert_array_equal(first, load_images(tmp_path, n=3))


def test_bad_folders_are_one_clear_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such folder.*must hold images"):
        load_images(tmp_path / "absent", n=4)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(UserError, match="not a folder"):
        load_images(tmp_path / "file.png", n=4)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    (empty / "sub").mkdir()
    with pytest.raises(UserError, match=f"{empty}: holds no images"):
        load_images(empty, n=4)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png at all")
    with pytest.raises(UserError, match="none of its 1 image files could be read"):
        load_images(broken, n=4)
    with pytest.raises(UserError, match="unknown synthetic source"):
        load_data("synthetic:lsun", n=4)
    for err in _messages(tmp_path):
        assert "\n" not in err


def _messages(tmp_path: Path) -> list[str]:
    out = []
    for bad in (tmp_path / "absent", tmp_path / "empty", tmp_path / "broken"):
        try:
            load_images(bad, n=4)
        except UserError as exc:
            out.append(str(exc))
    return out


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_an_unreadable_folder_is_a_user_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    _write(locked / "a.png", 64, 64, 0)
    locked.chmod(0)
    try:
        with pytest.raises(UserError, match="cannot be read"):
            load_images(locked, n=4)
    finally:
        locked.chmod(0o755)


def test_unreadable_files_are_skipped_with_a_warning(tmp_path: Path, capsys) -> None:
    _write(tmp_path / "good.png", 64, 64, 0)
    _write(tmp_path / "good2.png", 64, 64, 1)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    images = load_images(tmp_path, n=4)
    assert images.shape[0] == 2
    assert "skipped 1 unreadable image file(s)" in capsys.readouterr().err


def test_the_synthetic_source_reads_generated_scenes_back(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CC_BENCH_CACHE", str(tmp_path / "cache"))
    from cc_bench.envs.sort_of_clevr import generate_scenes

    images = load_data(SYNTHETIC_SORT_OF_CLEVR, n=5)
    expected, _ = generate_scenes(5, 0, cache=False)
    np.testing.assert_array_equal(images, expected)  # 64x64 PNGs: resize and crop are no-ops


# -- the measures --------------------------------------------------------------------------


def _line(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.tensor(np.stack(frames))[None]  # (1, T, ...)


def test_an_even_cross_fade_scores_one() -> None:
    a, b = np.zeros((3, 4, 4)), np.ones((3, 4, 4))
    frames = [a + (b - a) * t / 4 for t in range(5)]
    out = interpolation_smoothness(_line(frames))
    assert out["interp_mean_step"] == pytest.approx(1.0)
    assert out["interp_max_step"] == pytest.approx(1.0)
    assert out["interp_lines"] == 1


def test_one_jump_scores_t_minus_one() -> None:
    a, b = np.zeros((3, 4, 4)), np.ones((3, 4, 4))
    out = interpolation_smoothness(_line([a, a, a, b, b]))
    assert out["interp_max_step"] == pytest.approx(4.0)  # all the change in 1 of 4 steps
    assert out["interp_mean_step"] == pytest.approx(1.0)  # still the straight path's length


def test_a_detour_is_longer_than_the_straight_path() -> None:
    # a -> c -> b with c off the segment: steps |c - a| and |b - c|, here each sqrt(2) of
    # |b - a| = 2 ... by hand: a = (0, 0), c = (1, 1), b = (2, 0): steps sqrt(2), sqrt(2)
    a, c, b = np.array([0.0, 0.0]), np.array([1.0, 1.0]), np.array([2.0, 0.0])
    out = interpolation_smoothness(_line([a, c, b])[..., None, None])
    # normalised step = sqrt(2) * (T - 1) / 2 = sqrt(2)
    assert out["interp_mean_step"] == pytest.approx(np.sqrt(2))
    assert out["interp_max_step"] == pytest.approx(np.sqrt(2))


def test_lines_with_equal_endpoints_are_left_out() -> None:
    a, b = np.zeros((1, 2, 2)), np.ones((1, 2, 2))
    frames = torch.cat([_line([a, b, a]), _line([a, b, b])])  # the first goes and comes back
    out = interpolation_smoothness(frames)
    assert out["interp_lines"] == 1
    assert out["interp_max_step"] == pytest.approx(2.0)
    constant = interpolation_smoothness(_line([a, a, a]))
    assert constant == {"interp_mean_step": 1.0, "interp_max_step": 1.0, "interp_lines": 0}
    with pytest.raises(ValueError):
        interpolation_smoothness(torch.zeros(2, 1, 3, 4, 4))


def test_mean_pairwise_distance_matches_scipy() -> None:
    x = torch.randn(9, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    expected = pdist(x.flatten(1).double().numpy()).mean()
    assert mean_pairwise_distance(x) == pytest.approx(expected, rel=1e-9)


def test_a_collapsed_generator_has_no_diversity() -> None:
    data = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    collapsed = data[:1].repeat(8, 1, 1, 1)
    out = sample_diversity(collapsed, data)
    assert out["sample_pairwise_dist"] == pytest.approx(0.0, abs=1e-6)
    assert out["diversity_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert sample_diversity(data[:8], data[8:])["diversity_ratio"] == pytest.approx(1.0, abs=0.2)

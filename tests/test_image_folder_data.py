"""gan.image_folder's data and measures: folders the tests write, torchvision and scipy as the
references, and every bad folder rejected with one UserError naming it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.distance import pdist
from torchvision import transforms

from cc_bench.config import config_from_dict, config_to_dict
from cc_bench.errors import UserError
from cc_bench.gan import image_folder_data
from cc_bench.gan.image_folder_config import ImageFolderConfig
from cc_bench.gan.image_folder_data import (
    SYNTHETIC_SORT_OF_CLEVR,
    check_decodes,
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


def test_images_beside_image_subfolders_are_not_read_and_the_user_is_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for k in range(3):
        _write(tmp_path / f"top{k}.png", 64, 64, k)
    _write(tmp_path / "thumbs" / "t0.png", 64, 64, 10)
    note = (
        f"the 3 image file(s) directly in {tmp_path} are not read: its subfolders hold images, "
        "and then only they are"
    )
    with pytest.raises(UserError, match="only 1 of its 1 image files") as one:
        load_images(tmp_path, n=10)
    assert note in str(one.value)
    with pytest.raises(UserError) as checked:
        check_decodes(tmp_path)
    assert note in str(checked.value)
    _write(tmp_path / "thumbs" / "t1.png", 64, 64, 11)
    capsys.readouterr()
    assert load_images(tmp_path, n=10).shape[0] == 2  # the subfolder's, as ImageFolder reads
    assert f"warning: {note}" in capsys.readouterr().err


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


def test_a_finished_runs_config_reads_back_where_its_folder_is_gone(tmp_path: Path) -> None:
    """The folder is checked before a run, not whenever a config is built: a report on another
    machine (or after the data moved) must still read the run's config back."""
    gone = tmp_path / "moved-away"
    values = config_to_dict(ImageFolderConfig(data_dir=str(gone)))
    cfg = config_from_dict(ImageFolderConfig, values)
    assert cfg.data_dir == str(gone)
    with pytest.raises(UserError, match=f"--data-dir {gone}: no such folder"):
        cfg.check_inputs()
    with pytest.raises(UserError, match="unknown synthetic source"):
        ImageFolderConfig(data_dir="synthetic:lsun")


def _messages(tmp_path: Path) -> list[str]:
    out = []
    for bad in (tmp_path / "absent", tmp_path / "empty", tmp_path / "broken"):
        try:
            load_images(bad, n=4)
        except UserError as exc:
            out.append(str(exc))
    return out


_CHECK_AS_ANOTHER_USER = """
import sys
from cc_bench.errors import UserError
from cc_bench.gan.image_folder_config import ImageFolderConfig
try:
    ImageFolderConfig(data_dir=sys.argv[1]).check_inputs()
except UserError as exc:
    print(exc)
"""


def _as_nobody() -> list[str] | None:
    """A command prefix that runs this Python as the unprivileged user `nobody` (root reads any
    folder), or None where root cannot switch or `nobody` cannot run this Python."""
    for prefix in (
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
        ["runuser", "-u", "nobody", "--"],
    ):
        if shutil.which(prefix[0]) is None:
            continue
        probe = [*prefix, sys.executable, "-c", "import cc_bench.gan.image_folder_config"]
        if subprocess.run(probe, capture_output=True, cwd="/").returncode == 0:
            return prefix
    return None


def test_an_unreadable_folder_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = Path(tempfile.mkdtemp(prefix="cc_bench_locked_"))  # not under pytest's 0700 root
    parent.chmod(0o755)
    locked = parent / "locked"
    locked.mkdir()
    _write(locked / "a.png", 64, 64, 0)
    _write(locked / "b.png", 64, 64, 1)
    locked.chmod(0)
    try:
        nobody = _as_nobody() if os.geteuid() == 0 else None
        if nobody is not None:  # root: the check as an unprivileged user, in its own process
            proc = subprocess.run(
                [*nobody, sys.executable, "-c", _CHECK_AS_ANOTHER_USER, str(locked)],
                capture_output=True,
                text=True,
                cwd="/",
            )
            assert proc.returncode == 0, proc.stderr
            assert f"{locked}: cannot be read (permission denied)" in proc.stdout
            return
        if os.geteuid() == 0:  # root and no way to drop it: deny as the kernel would deny nobody
            real_access = os.access
            monkeypatch.setattr(
                os, "access", lambda p, mode, **kw: Path(p) != locked and real_access(p, mode, **kw)
            )
        with pytest.raises(UserError, match=f"{locked}: cannot be read"):
            ImageFolderConfig(data_dir=str(locked)).check_inputs()
        with pytest.raises(UserError, match=f"{locked}: cannot be read"):
            load_images(locked, n=4)
    finally:
        locked.chmod(0o755)
        shutil.rmtree(parent)


def test_fewer_than_two_readable_images_is_a_user_error(tmp_path: Path) -> None:
    _write(tmp_path / "one" / "a.png", 70, 80, 0)
    with pytest.raises(UserError, match="only 1 of its 1 image files could be read.*at least 2"):
        load_images(tmp_path / "one", n=10)
    _write(tmp_path / "two" / "a.png", 70, 80, 0)
    (tmp_path / "two" / "b.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="only 1 of its 2 image files could be read"):
        load_images(tmp_path / "two", n=10)
    with pytest.raises(UserError, match="n_samples=1: must be >= 2"):
        ImageFolderConfig(data_dir=str(tmp_path / "two"), n_samples=1)


def test_data_seed_draws_the_sample_of_a_larger_folder(tmp_path: Path) -> None:
    for k in range(12):
        _write(tmp_path / f"{k:02d}.png", 64, 64, k)
    every = load_images(tmp_path, n=12)  # sorted by name: image k is file k

    def picked(seed: int) -> list[int]:
        sample = load_images(tmp_path, n=4, seed=seed)
        return [next(k for k in range(12) if np.array_equal(im, every[k])) for im in sample]

    expected = sorted(np.random.default_rng(7).choice(12, size=4, replace=False).tolist())
    assert picked(7) == expected
    assert picked(0) != picked(7)


def test_unreadable_files_are_skipped_with_a_warning(tmp_path: Path, capsys) -> None:
    _write(tmp_path / "good.png", 64, 64, 0)
    _write(tmp_path / "good2.png", 64, 64, 1)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    images = load_images(tmp_path, n=4)
    assert images.shape[0] == 2
    assert "skipped 1 unreadable image file(s)" in capsys.readouterr().err


def test_an_image_too_large_to_decode_safely_is_skipped(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    _write(tmp_path / "a.png", 64, 64, 0)
    _write(tmp_path / "b.png", 64, 64, 1)
    _write(tmp_path / "huge.png", 120, 120, 2)
    # PIL refuses images over twice MAX_IMAGE_PIXELS (DecompressionBombError, not an OSError):
    # lowered here, so a 120x120 image stands in for a 13,500 x 13,500 one
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "huge.png").load()
    images = load_images(tmp_path, n=4)
    assert images.shape == (2, 64, 64, 3)
    assert "skipped 1 unreadable image file(s)" in capsys.readouterr().err


def test_the_check_before_a_run_decodes_until_two_images_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tried: list[str] = []
    real_load = image_folder_data._load_one
    monkeypatch.setattr(
        image_folder_data, "_load_one", lambda p, size: tried.append(p.name) or real_load(p, size)
    )
    for k in range(10):
        (tmp_path / "ok" / f"{k}_bad.png").parent.mkdir(exist_ok=True)
        (tmp_path / "ok" / f"{k}_bad.png").write_bytes(b"not a png")
        _write(tmp_path / "ok" / f"{k}_good.png", 64, 64, k)
    ImageFolderConfig(data_dir=str(tmp_path / "ok")).check_inputs()
    # In the file system's order (nothing is sorted), it stops at the second good one.
    assert len([t for t in tried if t.endswith("_good.png")]) == 2
    assert tried[-1].endswith("_good.png") and len(set(tried)) == len(tried)

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for k in range(3):
        (corrupt / f"{k}.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(UserError, match=f"{corrupt}: none of its 3 image files could be read"):
        ImageFolderConfig(data_dir=str(corrupt)).check_inputs()
    _write(corrupt / "3.png", 64, 64, 0)
    with pytest.raises(UserError, match="only 1 of its 4 image files could be read"):
        check_decodes(corrupt)

    late = tmp_path / "late"  # 70 corrupt files: given up after the first 64 tried
    late.mkdir()
    for k in range(70):
        (late / f"a{k:02d}.png").write_bytes(b"not a png")
    tried.clear()
    with pytest.raises(UserError, match="none of the first 64 of its 70 image files could be"):
        check_decodes(late)
    assert len(tried) == 2 * 64  # the quick search's 64, then the listing's first 64
    assert tried[64:] == [f"a{k:02d}.png" for k in range(64)]  # in the listing's order


def test_an_unreadable_or_looping_subfolder_is_skipped_as_the_run_skips_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a" / "loop")  # ELOOP when read
    for k in range(3):
        _write(tmp_path / "b" / f"{k}.png", 64, 64, k)
    assert len(list_images(tmp_path)) == 3
    check_decodes(tmp_path)  # no error: b's images decode


def test_the_check_finds_its_images_without_listing_class_folders_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Class subfolders are walked only as far as the check needs (a folder of millions would
    take minutes to list and sort); the root's own images do not count beside them, as
    ImageFolder does not read them."""
    for k in range(3):
        (tmp_path / f"loose{k}.png").write_bytes(b"not a png")  # never read: classes below
    for k in range(200):
        _write(tmp_path / "bedroom" / f"{k:03d}.png", 8, 8, k)
    _write(tmp_path / "kitchen" / "deep" / "x.png", 8, 8, 0)
    seen: list[str] = []
    walk = image_folder_data._walk_images

    def counted(folder: str, extensions: tuple[str, ...]):  # noqa: ANN202
        for path in walk(folder, extensions):
            seen.append(path.name)
            yield path

    monkeypatch.setattr(image_folder_data, "_walk_images", counted)
    check_decodes(tmp_path)
    assert len(seen) == 2 and all(name[:3].isdigit() for name in seen)  # bedroom's first two
    found = list(image_folder_data._found_images(tmp_path))
    assert len(found) == 201 and not any(p.name.startswith("loose") for p in found)
    assert {p.name for p in found} == {p.name for p in list_images(tmp_path)}


def _deny(monkeypatch: pytest.MonkeyPatch, *locked: Path) -> None:
    """os.access says no for `locked`, as it does for a folder of mode 0 to anyone but root
    (the tests run as root, who reads every folder)."""
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: Path(p) not in locked and real_access(p, mode, **kw)
    )


def test_an_unreadable_class_subfolder_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path / "bedroom" / "a.png", 64, 64, 0)
    _write(tmp_path / "bedroom" / "b.png", 64, 64, 1)
    _deny(monkeypatch, tmp_path / "bedroom")
    message = f"{tmp_path}: its subfolder\\(s\\) bedroom cannot be read"
    with pytest.raises(UserError, match=message):
        list_images(tmp_path)
    with pytest.raises(UserError, match=message):
        ImageFolderConfig(data_dir=str(tmp_path)).check_inputs()
    # beside a readable class: that one is read, the other named in a warning
    _write(tmp_path / "kitchen" / "c.png", 64, 64, 2)
    _write(tmp_path / "kitchen" / "d.png", 64, 64, 3)
    assert [p.name for p in list_images(tmp_path)] == ["c.png", "d.png"]
    assert load_images(tmp_path, n=10).shape[0] == 2
    err = capsys.readouterr().err
    assert "skipped 1 subfolder(s)" in err and "cannot be read: bedroom" in err


def test_reading_shows_one_progress_step_an_image(tmp_path: Path) -> None:
    for k in range(5):
        _write(tmp_path / f"{k}.png", 64, 64, k)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    bars: list[dict] = []

    class Bar:
        def __init__(self, total: int, desc: str) -> None:
            self.state = {"total": total, "desc": desc, "done": 0, "closed": False}
            bars.append(self.state)

        def update(self, n: int) -> None:
            self.state["done"] += n

        def close(self) -> None:
            self.state["closed"] = True

    assert load_images(tmp_path, n=4, progress=Bar).shape[0] in (3, 4)  # a sample of 4 of 6
    assert bars == [{"total": 4, "desc": f"reading {tmp_path}", "done": 4, "closed": True}]


def test_the_folder_not_the_words_typed_is_the_identity(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "flat").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "flat")
    monkeypatch.chdir(tmp_path)
    real = str((tmp_path / "flat").resolve())
    for typed in ("flat", "./flat/", real, "link", str(tmp_path / "flat") + "/"):
        cfg = ImageFolderConfig(data_dir=typed)
        assert cfg.data_dir == real
        assert config_to_dict(cfg) == config_to_dict(ImageFolderConfig(data_dir=real))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the same words typed elsewhere: another folder
    assert ImageFolderConfig(data_dir="flat").data_dir == str(
        (tmp_path / "elsewhere/flat").resolve()
    )


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

"""Sort-of-CLEVR: the generator, the parser (clean, noisy, blurred) and the measures, checked
against hand-made scenes and sequences whose answers are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from cc_bench.envs import sort_of_clevr
from cc_bench.envs.sort_of_clevr import (
    PALETTE,
    SQUARE_FILL,
    ParsedScene,
    SceneObject,
    attribute_frequencies,
    frequency_gap,
    generate_scenes,
    image_grid,
    interpolation_measures,
    parse_scenes,
    position_coverage,
    sample_measures,
    square_fill,
    to_uint8_images,
    train_test_scenes,
    write_gif,
)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CC_BENCH_CACHE", str(tmp_path / "cache"))


def _draw(size: int, objects: list[tuple[str, str, float, float, int]]) -> np.ndarray:
    """An independent drawing: (color, shape, i, j, r) objects on a white canvas, uint8 (H, W, 3)."""
    img = np.full((size, size, 3), 255, dtype=np.uint8)
    ii, jj = np.mgrid[0:size, 0:size]
    for color, shape, i, j, r in objects:
        if shape == "circle":
            mask = (ii - i) ** 2 + (jj - j) ** 2 <= r * r
        else:
            mask = (abs(ii - i) <= r) & (abs(jj - j) <= r)
        img[mask] = PALETTE[color]
    return img


# -- the generator --------------------------------------------------------------------------


def test_generator_counts_inside_apart_and_pixels():
    images, scenes = generate_scenes(300, seed=1)
    assert images.shape == (300, 64, 64, 3) and images.dtype == np.uint8
    assert len(scenes) == 300
    shapes = []
    for image, scene in zip(images, scenes, strict=True):
        assert len(scene) == 2
        assert sorted(o.color for o in scene) == ["blue", "red"]
        for obj in scene:
            i, j = obj.center
            assert 10 <= i <= 53 and 10 <= j <= 53  # radius 10 fully inside 0..63
            assert obj.area == (317 if obj.shape == "circle" else 441)
            # the object's own pixels have its colour, exactly where an independent drawing puts them
            mine = _draw(64, [(obj.color, obj.shape, i, j, 10)])
            drawn = (mine != 255).any(-1)
            assert (image[drawn] == PALETTE[obj.color]).all()
            shapes.append(obj.shape)
        a, b = scene
        # bounding boxes (21 px) never touch: Chebyshev distance of centres > 21
        assert max(abs(a.center[0] - b.center[0]), abs(a.center[1] - b.center[1])) >= 23
        colored = (image != 255).any(-1).sum()
        assert colored == sum(o.area for o in scene)  # no overlap, nothing else drawn
    assert 0.4 < np.mean([s == "circle" for s in shapes]) < 0.6


def test_generator_is_seeded_and_cached(tmp_path):
    a, sa = generate_scenes(50, seed=3)
    b, sb = generate_scenes(50, seed=3)  # from the cache
    c, sc = generate_scenes(50, seed=3, cache=False)
    d, _ = generate_scenes(50, seed=4, cache=False)
    assert (a == b).all() and (a == c).all() and sa == sb == sc
    assert not (a == d).all()
    assert list((tmp_path / "cache" / "sort_of_clevr").glob("*.npz"))


def test_a_corrupt_cache_file_is_regenerated(tmp_path):
    fresh, scenes = generate_scenes(20, seed=3, cache=False)
    generate_scenes(20, seed=3)
    (path,) = (tmp_path / "cache" / "sort_of_clevr").glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])  # truncated: not a zip file any more
    images, found = generate_scenes(20, seed=3)
    assert (images == fresh).all() and found == scenes
    with np.load(path) as f:  # and written again, whole
        assert (f["images"] == fresh).all()


def test_an_unwritable_cache_only_costs_regenerating(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CC_BENCH_CACHE", str(blocker))
    fresh, scenes = generate_scenes(20, seed=3, cache=False)
    images, found = generate_scenes(20, seed=3)
    assert (images == fresh).all() and found == scenes
    err = capsys.readouterr().err
    assert err.startswith("warning: Sort-of-CLEVR scenes not cached") and err.count("\n") == 1
    assert blocker.read_text() == "not a folder"
    # a folder that takes no files: the temporary file is not left behind
    monkeypatch.setenv("CC_BENCH_CACHE", str(tmp_path / "cache"))
    target = tmp_path / "cache" / "sort_of_clevr"
    target.mkdir(parents=True)

    def refuse(file, **arrays):
        Path(file).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", refuse)
    images, _ = generate_scenes(20, seed=3)
    assert (images == fresh).all() and list(target.iterdir()) == []
    assert "No space left on device" in capsys.readouterr().err


def test_generator_other_parameters():
    images, scenes = generate_scenes(
        20,
        seed=0,
        size=48,
        n_objects=3,
        colors=("red", "green", "blue", "gray"),
        shapes=("square",),
        object_size=5,
        cache=False,
    )
    assert images.shape == (20, 48, 48, 3)
    for scene in scenes:
        assert len(scene) == 3 and len({o.color for o in scene}) == 3
        assert all(o.shape == "square" and o.area == 121 for o in scene)
    with pytest.raises(ValueError, match="distinct colours"):
        generate_scenes(2, 0, n_objects=3, cache=False)
    with pytest.raises(ValueError, match="unknown colours"):
        generate_scenes(2, 0, colors=("red", "pink"), cache=False)


# -- the parser -----------------------------------------------------------------------------


def _check_round_trip(parsed, scenes, tol_px: float) -> None:
    for found, truth in zip(parsed, scenes, strict=True):
        assert found.valid, found.problem
        assert len(found.objects) == len(truth)
        for obj in truth:
            (match,) = [o for o in found.objects if o.color == obj.color]
            assert match.shape == obj.shape
            di, dj = match.center[0] - obj.center[0], match.center[1] - obj.center[1]
            assert np.hypot(di, dj) <= tol_px, (obj, match)


def test_parser_round_trip_on_generated_scenes():
    images, scenes = generate_scenes(200, seed=5)
    _check_round_trip(parse_scenes(images), scenes, tol_px=1.0)


def test_parser_holds_with_noise_and_blur():
    images, scenes = generate_scenes(100, seed=6)
    rng = np.random.default_rng(0)
    soft = ndimage.gaussian_filter(images.astype(np.float32), sigma=(0, 1.0, 1.0, 0))
    noisy = soft + rng.normal(0, 25, size=soft.shape)  # about 10% of the range
    # as a model would give it: floats in [-1, 1], channels first
    model_like = (np.clip(noisy, 0, 255) / 127.5 - 1).transpose(0, 3, 1, 2)
    _check_round_trip(parse_scenes(model_like), scenes, tol_px=1.0)


def test_parser_hand_made_scenes():
    clean = _draw(64, [("red", "circle", 20, 20, 10), ("blue", "square", 45, 40, 10)])
    three = _draw(
        64,
        [("red", "circle", 15, 15, 8), ("blue", "square", 45, 45, 8), ("red", "square", 15, 48, 8)],
    )
    bar = _draw(64, [("red", "square", 20, 20, 10), ("blue", "square", 45, 45, 10)])
    bar[5:60, 30:33] = PALETTE["blue"]  # a long thin stroke touching nothing
    blank = np.full((64, 64, 3), 255, np.uint8)
    specks = clean.copy()
    for k in range(16):  # sixteen 2x2 red specks: 64 stray pixels
        specks[2 + 4 * k : 4 + 4 * k, 60:62] = PALETTE["red"]
    two_reds = _draw(64, [("red", "circle", 20, 20, 10), ("red", "square", 45, 40, 10)])
    # the clean sizes of an object of `object_size` 10: between half a disc's area (157 px)
    # and 1.3 squares' (573 px); squares of half-side 6 (169 px) and 11 (529) pass, 5 (121)
    # and 12 (625) do not
    sized = [
        _draw(64, [("red", "square", 16, 16, r), ("blue", "circle", 46, 46, 10)])
        for r in (5, 6, 11, 12)
    ]
    p = parse_scenes(np.stack([clean, three, bar, blank, specks, two_reds, *sized]))
    assert p[0].valid and {(o.color, o.shape) for o in p[0].objects} == {
        ("red", "circle"),
        ("blue", "square"),
    }
    assert p[0].objects[0].center == (45.0, 40.0)  # largest first
    assert not p[1].valid and p[1].problem == "3 objects"
    assert not p[2].valid
    assert not p[3].valid and p[3].objects == []
    assert not p[4].valid and p[4].stray_px == 64 and "stray" in p[4].problem
    assert not p[5].valid and p[5].problem == "a colour twice"
    assert [o.color for o in p[5].objects] == ["red", "red"]
    too_small, smallest, largest, too_large = p[6:]
    assert smallest.valid and largest.valid
    assert not too_small.valid and too_small.problem == "red: not a clean shape"
    assert not too_large.valid and too_large.problem == "red: not a clean shape"
    red_areas = [next(o.area for o in q.objects if o.color == "red") for q in p[6:]]
    assert red_areas == [121.0, 169.0, 529.0, 625.0]  # squares keep every pixel


@pytest.mark.parametrize(
    "rgb",
    [(0, 0, 0), (0, 255, 0), (128, 0, 128), (200, 200, 0)],
    ids=["black", "green", "purple", "olive"],
)
def test_parser_rejects_colours_off_the_palette(rgb):
    base = _draw(64, [("red", "square", 20, 20, 10), ("blue", "circle", 45, 45, 10)])
    assert parse_scenes(base[None])[0].valid
    # the red square painted another colour: no red object, and the scene is not valid
    swapped = base.copy()
    swapped[10:31, 10:31] = rgb
    (p,) = parse_scenes(swapped[None])
    assert not p.valid and [o.color for o in p.objects] == ["blue"]
    assert p.other_px >= 21 * 21 - 4 * 5  # the square, less at most the opening's corners
    # a third blob of that colour beside a good pair: the two objects parse, the scene fails
    extra = base.copy()
    extra[50:60, 5:15] = rgb
    (p,) = parse_scenes(extra[None])
    assert {o.color for o in p.objects} == {"red", "blue"}
    assert not p.valid and p.problem == "100 px of another colour" and p.other_px == 100


def test_parser_colour_distance_is_to_the_blends_with_white():
    # purple (128, 0, 128) is 155.95 from the red-white and the blue-white blends (by hand:
    # nearest blend (255, 64, 64), distance sqrt(127^2 + 64^2 + 64^2)); black is 255 from all
    img = _draw(64, [("red", "square", 20, 20, 10), ("blue", "circle", 45, 45, 10)])
    img[50:60, 5:15] = (128, 0, 128)
    assert parse_scenes(img[None], max_color_dist=155)[0].other_px == 100
    assert parse_scenes(img[None], max_color_dist=157)[0].other_px == 0
    # a blurred edge (a blend of red and white) is red or background, never another colour
    pink = _draw(64, [("red", "square", 20, 20, 10), ("blue", "circle", 45, 45, 10)])
    pink[9, 9:32] = (255, 128, 128)
    (p,) = parse_scenes(pink[None])
    assert p.valid and p.other_px == 0


def test_parser_reports_boxes_and_clean_flags():
    good = _draw(64, [("red", "square", 20, 20, 10), ("blue", "circle", 45, 40, 8)])
    bar = _draw(64, [("red", "square", 20, 20, 10)])
    bar[40:44, 30:60] = PALETTE["blue"]  # a blue bar, 4 x 30: survives the opening, not clean
    p, q = parse_scenes(np.stack([good, bar]))
    assert p.valid and p.clean == [True, True]
    assert p.boxes == [(10, 10, 31, 31), (38, 33, 53, 48)]  # the disc less its one-pixel tips
    assert not q.valid and q.problem == "blue: not a clean shape"
    assert q.boxes == [(10, 10, 31, 31), (40, 30, 44, 60)] and q.clean == [True, False]


def test_to_uint8_images_layouts():
    img = np.zeros((1, 4, 4, 3), np.uint8)
    img[0, 0, 0] = (255, 0, 0)
    as_float = img.astype(np.float32) / 127.5 - 1
    assert (to_uint8_images(as_float) == img).all()
    assert (to_uint8_images(as_float.transpose(0, 3, 1, 2)) == img).all()
    # torch tensors: uint8 (n, H, W, 3) stays as it is, floats are read in [-1, 1]
    assert (to_uint8_images(torch.from_numpy(img)) == img).all()
    assert (to_uint8_images(torch.from_numpy(as_float).permute(0, 3, 1, 2)) == img).all()


# -- the measures ---------------------------------------------------------------------------


def _obj(color: str, i: float, j: float) -> SceneObject:
    return SceneObject(color, "circle", (i, j), 300.0)


def test_interpolation_smooth_and_one_jump():
    smooth = [[_obj("red", 20, 10 + t), _obj("blue", 40, 40)] for t in range(16)]
    m = interpolation_measures([smooth])
    assert m["teleport_frac"] == 0 and m["max_jump_px"] == 1.0
    assert m["mean_step_px"] == pytest.approx(0.5)  # red 1 px, blue 0 px each frame

    jump = [[_obj("red", 20, 10 + (20 if t >= 8 else 0))] for t in range(16)]
    m = interpolation_measures([jump, smooth])
    assert m["teleport_frac"] == pytest.approx(1 / 30)
    assert interpolation_measures([jump])["teleport_frac"] == pytest.approx(1 / 15)
    assert interpolation_measures([jump])["max_jump_px"] == 20.0


def test_interpolation_appear_vanish():
    seq = [
        [_obj("red", 20, 20)] + ([_obj("blue", 40, 40)] if t in (2, 3) else []) for t in range(6)
    ]
    m = interpolation_measures([seq])
    # blue appears at 1->2 and vanishes at 3->4: 2 of 5 transitions
    assert m["teleport_frac"] == pytest.approx(2 / 5)
    assert m["appear_vanish_frac"] == pytest.approx(2 / 5)


def test_interpolation_on_images():
    frames = np.stack(
        [
            _draw(64, [("red", "square", 20, 15 + 2 * t, 8), ("blue", "circle", 45, 45, 8)])
            for t in range(8)
        ]
    )
    m = interpolation_measures(frames[None])  # (1, 8, 64, 64, 3)
    assert m["teleport_frac"] == 0 and m["max_jump_px"] == pytest.approx(2.0)
    smooth = frames.copy()
    frames[5:] = frames[0]  # the square jumps back 8 px at 4->5 (j 23 -> 15)
    m = interpolation_measures(frames[None])
    assert m["teleport_frac"] == pytest.approx(1 / 7) and m["max_jump_px"] == pytest.approx(8.0)
    # a list of K arrays (T, H, W, 3), as K separate interpolations give them
    m = interpolation_measures([smooth, frames])
    assert m["teleport_frac"] == pytest.approx(1 / 14) and m["max_jump_px"] == pytest.approx(8.0)


@pytest.mark.parametrize(
    "sequences",
    [5, "frames", [np.zeros((2, 8, 8, 3), np.uint8), [_obj("red", 1, 1)]], [[1, 2]], [3]],
    ids=["number", "string", "mixed", "frames-of-numbers", "sequence-a-number"],
)
def test_interpolation_rejects_what_is_not_frames(sequences):
    with pytest.raises(TypeError, match="sequences must be images"):
        interpolation_measures(sequences)


def _scene(valid: bool, *objects: SceneObject) -> ParsedScene:
    return ParsedScene(list(objects), valid)


def test_interpolation_collapsed_or_empty_has_no_robust_score():
    still = [[_obj("red", 20, 20), _obj("blue", 40, 40)] for _ in range(8)]
    m = interpolation_measures([still, still])
    assert m["teleport_frac"] == 0 and m["mean_step_px"] == 0 and m["endpoint_px"] == 0
    assert np.isnan(m["teleport_frac_valid"]) and m["valid_transitions_frac"] == 0
    nothing = [_scene(False) for _ in range(8)]
    m = interpolation_measures([nothing])
    assert m["teleport_frac"] == 0 and np.isnan(m["teleport_frac_valid"])
    assert np.isnan(m["endpoint_px"]) and np.isnan(m["steps_over_4px_frac"])
    assert np.isnan(m["mean_step_px"]) and np.isnan(m["max_jump_px"])  # not "smooth"


def test_interpolation_fast_smooth_move_is_not_a_teleport():
    # red crosses 42 px in 7 steps of 6 px; blue stays: the plain rule calls every step a jump
    fast = [[_obj("red", 20, 10 + 6 * t), _obj("blue", 45, 45)] for t in range(8)]
    m = interpolation_measures([fast])
    assert m["teleport_frac"] == 1.0 and m["teleport_frac_valid"] == 0.0
    assert m["steps_over_4px_frac"] == 0.5 and m["steps_over_8px_frac"] == 0.0
    assert m["endpoint_px"] == pytest.approx((42 + 0) / 2)
    # the same move with one 25-px jump (over 3 x its 6-px median) in the middle
    jumpy = [[_obj("red", 20, 10 + 6 * t + (25 if t >= 4 else 0))] for t in range(8)]
    m = interpolation_measures([jumpy])
    assert m["teleport_frac_valid"] == pytest.approx(1 / 7)
    assert m["steps_over_8px_frac"] == pytest.approx(1 / 7)


def test_interpolation_single_jump_and_appear_vanish_robust():
    jump = [[_obj("red", 20, 10 + (20 if t >= 8 else 0))] for t in range(16)]
    m = interpolation_measures([jump])
    assert m["teleport_frac_valid"] == pytest.approx(1 / 15)  # median step 0: the 4-px floor
    seq = [
        [_obj("red", 20, 20 + t)] + ([_obj("blue", 40, 40)] if t in (2, 3) else [])
        for t in range(6)
    ]
    m = interpolation_measures([seq])
    assert m["teleport_frac_valid"] == pytest.approx(2 / 5)  # blue appears, then vanishes


def test_interpolation_invalid_frames_are_bridged_by_the_robust_rule():
    frames = [_scene(True, _obj("red", 20, 10 + 2 * t), _obj("blue", 45, 45)) for t in range(8)]
    # frame 4 is a glitch: red 30 px off, the scene invalid (say a stray blob); the robust
    # rule bridges it (red moves 4 px from frame 3 to 5, within 2 x the 6-px step limit)
    frames[4] = _scene(False, _obj("red", 50, 18), _obj("blue", 45, 45))
    m = interpolation_measures([frames])
    assert m["teleport_frac"] == pytest.approx(2 / 7)  # into and out of the glitch
    assert m["teleport_frac_valid"] == 0.0 and m["valid_transitions_frac"] == 1.0
    assert m["interp_valid_frac"] == pytest.approx(7 / 8)
    # a real jump between two valid frames still counts
    frames[6] = _scene(True, _obj("red", 20, 60), _obj("blue", 45, 45))
    m = interpolation_measures([frames])
    assert m["teleport_frac_valid"] == pytest.approx(2 / 7)  # 5->6 and 6->7
    # invalid frames before the first valid one and after the last do not qualify
    frames = [_scene(False, _obj("red", 20, 10 + 2 * t)) for t in range(8)]
    frames[2:6] = [
        _scene(True, _obj("red", 20, 10 + 2 * t), _obj("blue", 45, 45)) for t in range(2, 6)
    ]
    m = interpolation_measures([frames])
    assert m["valid_transitions_frac"] == pytest.approx(3 / 7) and m["teleport_frac_valid"] == 0.0


def _moving_red(t: int) -> SceneObject:
    return _obj("red", 20, 10 + 2.2 * t)  # 33 px in 15 steps


def test_interpolation_fade_and_cross_fade_teleport_under_the_robust_rule():
    blue = _obj("blue", 50, 50)
    # fade out and back in: red missing from frames 7 and 8 (those scenes are invalid)
    fade = [_scene(True, _moving_red(t), blue) for t in range(16)]
    fade[7] = fade[8] = _scene(False, blue)
    m = interpolation_measures([fade])
    assert m["teleport_frac"] == pytest.approx(2 / 15)  # vanishes 6->7, appears 8->9
    assert m["teleport_frac_valid"] == pytest.approx(1 / 15)  # one teleport, bridging 6->9
    # cross-fade: red here and there at once in frames 7 and 8 (a colour twice: invalid)
    cross = [_scene(True, _moving_red(t), blue) for t in range(16)]
    cross[7] = cross[8] = _scene(False, _obj("red", 20, 10), _obj("red", 20, 43), blue)
    m = interpolation_measures([cross])
    assert m["teleport_frac_valid"] == pytest.approx(1 / 15)
    # the plain rule: a second red appears 6->7 and one of the two vanishes 8->9
    assert m["appear_vanish_frac"] == m["teleport_frac"] == pytest.approx(2 / 15)
    # a hard one-frame jump of red, for comparison: also one teleport
    jump = [_scene(True, _obj("red", 20, 10 if t < 8 else 43), blue) for t in range(16)]
    assert interpolation_measures([jump])["teleport_frac_valid"] == pytest.approx(1 / 15)
    # and a gap the object crosses too fast: 33 px in 3 transitions, its median step 0
    far = [_scene(True, _obj("red", 20, 10 if t < 7 else 43), blue) for t in range(16)]
    far[7] = far[8] = _scene(False, _obj("red", 20, 25), blue)  # invalid, say a blurry red
    assert interpolation_measures([far])["teleport_frac_valid"] == pytest.approx(1 / 15)
    # the same gap on a smooth mover is no teleport
    smooth = [_scene(True, _moving_red(t), blue) for t in range(16)]
    smooth[7] = smooth[8] = _scene(False, _moving_red(8), blue)
    assert interpolation_measures([smooth])["teleport_frac_valid"] == 0.0


def test_position_coverage_known_answers():
    ref = [[_obj("red", 4 + 8 * a, 4 + 8 * b)] for a in range(8) for b in range(8)]  # every cell
    assert position_coverage(ref, ref) == {"position_js": 0.0, "empty_cells_frac": 0.0}
    left = [[_obj("red", 4 + 8 * a, 4 + 8 * b)] for a in range(8) for b in range(4)]
    m = position_coverage(left, ref)
    assert m["empty_cells_frac"] == 0.5
    # p uniform on half the cells, q uniform on all: JS = 1 - 0.75 log2(3) / 2 ... by hand:
    p, q = np.repeat([1 / 32, 0], 32), np.full(64, 1 / 64)
    mid = (p + q) / 2
    js = 0.5 * np.sum(p[p > 0] * np.log2(p[p > 0] / mid[p > 0])) + 0.5 * np.sum(
        q * np.log2(q / mid)
    )
    assert m["position_js"] == pytest.approx(js)
    one = [[_obj("red", 60, 60)]]
    far = [[_obj("red", 2, 2)]]
    assert position_coverage(one, far) == {"position_js": 1.0, "empty_cells_frac": 1.0}
    assert position_coverage([ParsedScene([], False)], ref)["position_js"] == 1.0


def test_attribute_frequencies():
    scenes = [
        [SceneObject("red", "circle", (0, 0), 1), SceneObject("blue", "square", (0, 0), 1)],
        [SceneObject("red", "circle", (0, 0), 1), SceneObject("red", "circle", (0, 0), 1)],
    ]
    f = attribute_frequencies(scenes)
    assert f == {"shape/circle": 0.75, "shape/square": 0.25, "color/red": 0.75, "color/blue": 0.25}
    ref = {"shape/circle": 0.5, "shape/square": 0.5, "color/red": 0.5, "color/blue": 0.5}
    assert frequency_gap(f, ref) == {"shape_tv": 0.25, "color_tv": 0.25}


def test_sample_measures_on_known_scenes():
    red = SceneObject("red", "circle", (10, 10), 300)
    blue = SceneObject("blue", "square", (50, 50), 441)
    reference = [[red, blue]] * 4
    # two valid scenes where the data has them, one invalid: a blue square in a new place
    parsed = [ParsedScene([red, blue], True)] * 2 + [
        ParsedScene([SceneObject("blue", "square", (10, 50), 441)], False)
    ]
    m = sample_measures(parsed, reference)
    assert m["valid_frac"] == pytest.approx(2 / 3)
    # objects: circle 2 of 5 against 1 of 2; red 2 of 5 against 1 of 2
    assert m["shape_tv"] == pytest.approx(0.1) and m["color_tv"] == pytest.approx(0.1)
    assert m["empty_cells_frac"] == 0.0  # both of the data's cells are used
    coverage = position_coverage(parsed, reference)
    assert {k: m[k] for k in coverage} == coverage
    # centres: the data's 8 in two cells, 4 and 4; the samples' 5 in three, 2, 2 and 1
    p, q = np.array([2, 2, 1]) / 5, np.array([4, 4, 0]) / 8
    mid = (p + q) / 2
    js = 0.5 * np.sum(p * np.log2(p / mid)) + 0.5 * np.sum(q[:2] * np.log2(q[:2] / mid[:2]))
    assert m["position_js"] == pytest.approx(js)
    ref_freqs = attribute_frequencies(reference)
    assert sample_measures(parsed, reference, ref_freqs) == m


def test_image_grid_and_gif(tmp_path):
    from PIL import Image

    images = np.stack([np.full((4, 5, 3), 10 * k, np.uint8) for k in range(5)])
    grid = image_grid(images, cols=2, pad=1, scale=2)
    assert grid.shape == (3 * 9 + 1, 2 * 11 + 1, 3)
    assert (grid[1:9, 1:11] == 0).all() and (grid[1:9, 12:22] == 10).all()
    assert (grid[19:27, 1:11] == 40).all() and (grid[19:27, 12:22] == 160).all()  # empty: gray
    path = write_gif(tmp_path / "a.gif", list(images.repeat(4, 1).repeat(4, 2)))
    assert Image.open(path).n_frames == 2 * 5 - 2  # forwards, then backwards


def test_held_out_scenes_are_never_training_scenes():
    """A small canvas has few layouts, so a plain draw repeats training scenes in its test
    part; `train_test_scenes` replaces those (and only those) with unseen ones."""
    kw = {"size": 20, "object_size": 4, "cache": False}
    images, scenes = generate_scenes(300, seed=5, **kw)
    key = sort_of_clevr._scene_key
    seen = {key(sc) for sc in scenes[:200]}
    repeats = [i for i in range(200, 300) if key(scenes[i]) in seen]
    assert repeats  # the plain draw does repeat
    images2, scenes2 = train_test_scenes(200, 100, seed=5, **kw)
    assert not [i for i in range(200, 300) if key(scenes2[i]) in seen]
    kept = [i for i in range(300) if i not in repeats]
    assert np.array_equal(images2[kept], images[kept])  # everything else as drawn
    assert [scenes2[i] for i in kept] == [scenes[i] for i in kept]
    for i in repeats:  # the replacements are real scenes: their images parse back to them
        (parsed,) = parse_scenes(images2[i : i + 1])
        assert sorted(o.color for o in parsed.objects) == sorted(o.color for o in scenes2[i])


@pytest.mark.parametrize("object_size", [4, 6, 7, 10, 14])
def test_shapes_read_back_at_every_size_the_parser_takes(object_size: int) -> None:
    """Small drawn discs fill more of their box after the parser's opening (0.95 at radius
    6): the cut moves with them, so circles are not read as squares."""
    images, scenes = generate_scenes(200, 3, object_size=object_size)
    parsed = parse_scenes(images, object_size=object_size)
    for scene, got in zip(scenes, parsed, strict=True):
        assert got.valid, got.problem
        want = sorted((o.color, o.shape) for o in scene)
        assert sorted((o.color, o.shape) for o in got.objects) == want
    assert {o.shape for scene in scenes for o in scene} == {"circle", "square"}
    assert (square_fill(object_size) == SQUARE_FILL) == (object_size >= 7)


@pytest.mark.parametrize("object_size", [1, 2, 3, 5])
def test_sizes_whose_shapes_cannot_be_told_apart_are_refused(object_size: int) -> None:
    images, _ = generate_scenes(4, 0, object_size=object_size)
    with pytest.raises(ValueError, match=f"object_size={object_size} is too small to tell"):
        parse_scenes(images, object_size=object_size)

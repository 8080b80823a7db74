"""Not-so-CLEVR data and splits, checked against loops written out by hand."""

import pytest
import torch

from cc_bench.envs.not_so_clevr import load_not_so_clevr, split_indices


def test_counts_and_types():
    data = load_not_so_clevr()
    assert len(data) == 3136
    assert data.coords.shape == (3136, 2) and data.coords.dtype == torch.int64
    assert data.pixel.shape == (3136, 1, 64, 64) and data.pixel.dtype == torch.float32
    assert data.square.shape == (3136, 1, 64, 64) and data.square.dtype == torch.float32
    assert data.target.shape == (3136,) and data.target.dtype == torch.int64


def test_every_centre_once():
    data = load_not_so_clevr()
    expected = {(i, j) for i in range(4, 60) for j in range(4, 60)}
    got = [tuple(c) for c in data.coords.tolist()]
    assert len(set(got)) == len(got) == len(expected)
    assert set(got) == expected


def test_target_is_flat_index():
    data = load_not_so_clevr()
    for k in (0, 1, 57, 1500, 3135):
        i, j = data.coords[k].tolist()
        assert data.target[k].item() == i * 64 + j


@pytest.mark.parametrize("k", [0, 55, 56, 1234, 2999, 3135])
def test_images_match_loop_reference(k):
    data = load_not_so_clevr()
    i, j = data.coords[k].tolist()
    pixel = torch.zeros(64, 64)
    pixel[i, j] = 1.0
    square = torch.zeros(64, 64)
    for r in range(64):
        for c in range(64):
            if abs(r - i) <= 4 and abs(c - j) <= 4:
                square[r, c] = 1.0
    assert torch.equal(data.pixel[k, 0], pixel)
    assert torch.equal(data.square[k, 0], square)
    assert data.square[k].sum().item() == 81
    assert data.pixel[k].sum().item() == 1
    # The one-hot image's flat argmax is the classification target.
    assert data.pixel[k].flatten().argmax().item() == data.target[k].item()


def test_squares_inside_canvas():
    data = load_not_so_clevr()
    sums = data.square.sum(dim=(1, 2, 3))
    assert torch.all(sums == 81)
    # Row 0 is painted exactly by the squares centred on row 4, the last row by row 59.
    assert set(data.coords[data.square[:, 0, 0, :].sum(1) > 0, 0].tolist()) == {4}
    assert set(data.coords[data.square[:, 0, 63, :].sum(1) > 0, 0].tolist()) == {59}


def _check_partition(train, test):
    assert train.dtype == test.dtype == torch.int64
    tr, te = set(train.tolist()), set(test.tolist())
    assert len(tr) == len(train) and len(te) == len(test)
    assert not tr & te
    assert tr | te == set(range(3136))


def test_quadrant_split():
    data = load_not_so_clevr()
    train, test = split_indices("quadrant", seed=0)
    assert len(test) == 729 and len(train) == 2407
    _check_partition(train, test)
    expected_test = set()
    for k, (i, j) in enumerate(data.coords.tolist()):
        if i > 32 and j > 32:
            expected_test.add(k)
    assert set(test.tolist()) == expected_test
    # No test centre appears among the training centres.
    train_centres = {tuple(c) for c in data.coords[train].tolist()}
    assert not any(tuple(c) in train_centres for c in data.coords[test].tolist())


def test_quadrant_ignores_seed():
    a = split_indices("quadrant", seed=0)
    b = split_indices("quadrant", seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("fraction, n_test", [(0.2, 627), (0.25, 784), (0.5, 1568)])
def test_uniform_split_counts(fraction, n_test):
    train, test = split_indices("uniform", seed=0, test_fraction=fraction)
    assert len(test) == n_test and len(train) == 3136 - n_test
    _check_partition(train, test)


def test_uniform_split_seeded():
    a = split_indices("uniform", seed=3)
    b = split_indices("uniform", seed=3)
    c = split_indices("uniform", seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_the_data_is_built_once_a_process():
    load_not_so_clevr.cache_clear()
    assert load_not_so_clevr() is load_not_so_clevr()


def test_unknown_split():
    with pytest.raises(ValueError, match="'diagonal'.*uniform, quadrant"):
        split_indices("diagonal", seed=0)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_test_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        split_indices("uniform", seed=0, test_fraction=fraction)


def test_fraction_leaving_no_test_example():
    with pytest.raises(ValueError, match="test_fraction"):
        split_indices("uniform", seed=0, test_fraction=1e-5)

"""Tests for cc_bench.layers against an independent naive CoordConv (Liu et al. 2018, Section 2).

The reference builds the coordinates here with torch.linspace, concatenates them to
the input and runs torch's own convolution with the same weight.
"""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from cc_bench import layer_tuning, layers
from cc_bench.layers import (
    AddCoords,
    CoordConv1d,
    CoordConv2d,
    CoordConv3d,
    CoordConvTranspose2d,
    coord_grid,
    coordconvify,
)

COORD_CLASSES = {1: CoordConv1d, 2: CoordConv2d, 3: CoordConv3d}
TORCH_CLASSES = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
SPATIAL = {1: (7,), 2: (5, 7), 3: (3, 4, 5)}
PADDING_MODES = ["zeros", "reflect", "replicate", "circular"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is faster, and immune to a busy machine's stalls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


REAL_CHUNK = layers._CoordConvNd._chunk


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch: pytest.MonkeyPatch):
    """The "chunked" strategies in chunks of one image fewer than the batch (3 -> 2 + 1,
    2 -> 1 + 1), so the tests' tiny batches run them in several chunks, one uneven."""
    monkeypatch.setattr(layers._CoordConvNd, "_chunk", lambda self, x: max(1, x.shape[0] - 1))


def ref_coords(spatial: tuple[int, ...], with_r: bool, dtype: torch.dtype) -> torch.Tensor:
    """(n_coords, *spatial): linspace(-1, 1) per axis (0 on a size-1 axis), then r."""
    axes = [
        torch.linspace(-1, 1, n, dtype=torch.float64) if n > 1 else torch.zeros(1).double()
        for n in spatial
    ]
    chans = list(torch.meshgrid(*axes, indexing="ij"))
    if with_r:
        chans.append(torch.sqrt(sum(c**2 for c in chans)))
    return torch.stack(chans).to(dtype)


def ref_concat(x: torch.Tensor, with_r: bool) -> torch.Tensor:
    """(B, C + n_coords, *spatial): the naive CoordConv input."""
    c = ref_coords(tuple(x.shape[2:]), with_r, x.dtype)
    return torch.cat([x, c.unsqueeze(0).repeat(x.shape[0], *([1] * c.dim()))], dim=1)


def naive_twin(layer: nn.Module, cls: type[nn.Module], n: int, **kwargs) -> nn.Module:
    """A torch.nn conv over in_channels + n channels carrying ``layer``'s state dict."""
    twin = cls(layer.in_channels_data + n, **kwargs).to(layer.weight.dtype)
    twin.load_state_dict(layer.state_dict())
    return twin


def check_grads(
    layer: nn.Module, twin: nn.Module, x: torch.Tensor, with_r: bool, tol: float, **fw
) -> None:
    """Compare outputs and gradients of ``layer(x)`` with ``twin(cat([x, coords]))``."""
    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    out = layer(x1, **fw)
    ref = twin(ref_concat(x2, with_r), **fw)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=tol, rtol=tol)
    g = torch.randn_like(ref)
    out.backward(g)
    ref.backward(g)
    c = x.shape[1]
    axis = 0 if isinstance(layer, nn.ConvTranspose2d) else 1
    w, w_ref = layer.weight.grad, twin.weight.grad
    torch.testing.assert_close(x1.grad, x2.grad, atol=tol, rtol=tol)
    if layer.groups == 1:  # the data and the coordinate slices of the weight
        n = w.shape[axis] - c
        torch.testing.assert_close(
            w.narrow(axis, 0, c), w_ref.narrow(axis, 0, c), atol=tol, rtol=tol
        )
        torch.testing.assert_close(
            w.narrow(axis, c, n), w_ref.narrow(axis, c, n), atol=tol, rtol=tol
        )
    else:
        torch.testing.assert_close(w, w_ref, atol=tol, rtol=tol)
    if layer.bias is not None:
        torch.testing.assert_close(layer.bias.grad, twin.bias.grad, atol=tol, rtol=tol)


# ---------------------------------------------------------------- coordinates


def test_coord_grid_matches_hand_values() -> None:
    g = coord_grid((3, 4), with_r=True, dtype=torch.float64)
    assert g.shape == (1, 3, 3, 4)
    t = 1 / 3
    i = [[-1, -1, -1, -1], [0, 0, 0, 0], [1, 1, 1, 1]]
    j = [[-1, -t, t, 1]] * 3
    s2, s10 = math.sqrt(2), math.sqrt(10) / 3
    r = [[s2, s10, s10, s2], [1, t, t, 1], [s2, s10, s10, s2]]
    torch.testing.assert_close(g[0], torch.tensor([i, j, r], dtype=torch.float64))


@pytest.mark.parametrize("spatial", [(1,), (6,), (1, 4), (5, 1), (5, 7), (2, 1, 3), (3, 4, 5)])
@pytest.mark.parametrize("with_r", [False, True])
def test_coord_grid_matches_linspace(spatial: tuple[int, ...], with_r: bool) -> None:
    g = coord_grid(spatial, with_r, dtype=torch.float64)
    torch.testing.assert_close(g[0], ref_coords(spatial, with_r, torch.float64))


def test_coord_grid_is_cached_per_key() -> None:
    a = coord_grid((5, 7))
    assert coord_grid([5, 7], device="cpu", dtype=torch.float32) is a
    assert coord_grid((5, 7), with_r=True) is not a
    assert coord_grid((5, 7), dtype=torch.float64) is not a
    assert coord_grid((7, 5)) is not a
    assert coord_grid((5, 7), dtype=torch.bfloat16).dtype == torch.bfloat16


def test_grid_made_in_inference_mode_still_trains() -> None:
    layer = CoordConv2d(1, 2, 3)
    x = torch.randn(2, 1, 13, 17)
    with torch.inference_mode():
        layer(x)  # first use of the (13, 17) grid
    layer(x).sum().backward()
    assert layer.weight.grad is not None


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("with_r", [False, True])
def test_add_coords(rank: int, with_r: bool) -> None:
    x = torch.randn(3, 2, *SPATIAL[rank], dtype=torch.float64)
    out = AddCoords(rank, with_r)(x)
    torch.testing.assert_close(out, ref_concat(x, with_r))


def test_add_coords_expands_the_cached_grid() -> None:
    seen = []

    class Log(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(func.__name__)
            return func(*args, **(kwargs or {}))

    x = torch.randn(4, 2, 5, 7)
    AddCoords(2)(x)  # fills the cache
    with Log():
        AddCoords(2)(x)
    assert "expand.default" in seen
    assert not [f for f in seen if f.startswith("repeat")]


@pytest.mark.parametrize(
    ("module", "x", "match"),
    [
        (AddCoords(2), torch.randn(2, 3, 4), r"4-D input of shape \(B, C, H, W\)"),
        (AddCoords(1), torch.randn(2, 3, 4, 5), r"3-D input of shape \(B, C, L\)"),
        (CoordConv3d(1, 1, 1), torch.randn(1, 4, 5), r"5-D input of shape \(B, C, D, H, W\)"),
        (CoordConv2d(3, 4, 3), torch.randn(2, 5, 8, 8), "expects 3 input channels"),
        (CoordConv2d(3, 4, 3), torch.randn(5, 8, 8), r"3 input channels .* shape \(5, 8, 8\)"),
    ],
)
def test_bad_input_shape(module: nn.Module, x: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        module(x)


def test_bad_rank() -> None:
    with pytest.raises(ValueError, match="rank must be 1, 2 or 3"):
        AddCoords(4)


# ---------------------------------------------------------------- CoordConvNd


def case_id(kwargs: dict) -> str:
    return "-".join(f"{k[:3]}={v}" for k, v in kwargs.items())


CASES = [dict(kernel_size=3, padding=1, padding_mode=m) for m in PADDING_MODES] + [
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=2, stride=2),
    dict(kernel_size=3, dilation=2, padding=2, padding_mode="reflect"),
    dict(kernel_size=3, dilation=2, padding=1, padding_mode="circular"),
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=4, padding="same", padding_mode="replicate"),
    dict(kernel_size=2, padding="same", dilation=2, padding_mode="circular"),
    dict(kernel_size=3, padding="valid"),
    dict(kernel_size=1),
]


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kwargs", CASES, ids=case_id)
@pytest.mark.parametrize("with_r", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("channels", [3, 1], ids=["split", "concat"])
def test_coordconv_matches_naive(
    rank: int, kwargs: dict, with_r: bool, bias: bool, channels: int
) -> None:
    torch.manual_seed(0)
    kw = dict(out_channels=4, bias=bias, **kwargs)
    layer = COORD_CLASSES[rank](channels, with_r=with_r, **kw).double()
    twin = naive_twin(layer, TORCH_CLASSES[rank], rank + with_r, **kw)
    x = torch.randn(2, channels, *SPATIAL[rank], dtype=torch.float64)
    check_grads(layer, twin, x, with_r, tol=1e-10)


@pytest.mark.parametrize("spatial", [(1, 6), (5, 1), (1, 1)])
@pytest.mark.parametrize("padding_mode", ["zeros", "replicate", "circular"])
def test_size_one_axes(spatial: tuple[int, int], padding_mode: str) -> None:
    torch.manual_seed(0)
    kw = dict(out_channels=3, kernel_size=3, padding=1, padding_mode=padding_mode)
    layer = CoordConv2d(2, with_r=True, **kw).double()
    twin = naive_twin(layer, nn.Conv2d, 3, **kw)
    check_grads(layer, twin, torch.randn(3, 2, *spatial, dtype=torch.float64), True, 1e-10)


TRANSPOSED_CASES = [
    dict(kernel_size=3),
    dict(kernel_size=3, stride=2, padding=1, output_padding=1),
    dict(kernel_size=4, stride=2, padding=1, dilation=2),
    dict(kernel_size=2, stride=3, padding=0, output_padding=2, dilation=2),
]


@pytest.mark.parametrize("kwargs", TRANSPOSED_CASES)
@pytest.mark.parametrize("with_r", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_transposed_matches_naive(kwargs: dict, with_r: bool, bias: bool) -> None:
    torch.manual_seed(0)
    kw = dict(out_channels=4, bias=bias, **kwargs)
    layer = CoordConvTranspose2d(3, with_r=with_r, **kw).double()
    twin = naive_twin(layer, nn.ConvTranspose2d, 2 + with_r, **kw)
    check_grads(layer, twin, torch.randn(2, 3, 5, 7, dtype=torch.float64), with_r, 1e-10)


def test_transposed_output_size() -> None:
    torch.manual_seed(0)
    kw = dict(out_channels=2, kernel_size=3, stride=2, padding=1)
    layer = CoordConvTranspose2d(3, **kw).double()
    twin = naive_twin(layer, nn.ConvTranspose2d, 2, **kw)
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    check_grads(layer, twin, x, False, 1e-10, output_size=[8, 12])
    assert layer(x, output_size=[8, 12]).shape[-2:] == (8, 12)


class LogOps(TorchDispatchMode):
    """Records every aten op run, the input shape of every convolution, and the strides of
    every in-place add's operands."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []
        self.convs: list[tuple[int, ...]] = []
        self.adds: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func.__name__)
        if func.__name__.startswith("convolution"):
            self.convs.append(tuple(args[0].shape))
        if func.__name__.startswith("add_"):
            self.adds.append((args[0].stride(), args[1].stride()))
        return func(*args, **(kwargs or {}))


def test_split_strategies_never_concatenate() -> None:
    layers._patch_cache.clear()
    layer = CoordConv2d(3, 8, 3, padding=1, with_r=True)
    layer.strategy = "split-sumbias"
    with LogOps() as first:
        layer(torch.randn(5, 3, 6, 9))
    # The first call of a shape makes the grid's patches: a convolution of the grid (a
    # batch of one) with an identity kernel; then one convolution of the batch, no cat.
    assert not [op for op in first.ops if op.startswith("cat")]
    assert sorted(first.convs) == [(1, 3, 6, 9), (5, 3, 6, 9)]
    with LogOps() as again:  # the patches are cached: the coordinates cost one addmm
        layer(torch.randn(5, 3, 6, 9))
    assert again.convs == [(5, 3, 6, 9)]
    assert [op for op in again.ops if op.startswith(("addmm", "cat"))] == ["addmm.default"]
    layer.strategy = "split-fusedbias"  # the bias goes to the convolution: a plain mm
    with LogOps() as fused:
        layer(torch.randn(5, 3, 6, 9))
    assert [op for op in fused.ops if op.startswith(("addmm", "mm", "cat"))] == ["mm.default"]


@pytest.fixture
def autotune_off():
    """Timing off for one test (the fixed rule), then as it was."""
    was = layers.autotune_enabled()
    layers.set_autotune(False)
    yield
    layers.set_autotune(was)


@pytest.mark.usefixtures("autotune_off")
def test_default_rule_concatenates_only_below_n_coords_channels() -> None:
    """With timing off: the split form from as many input channels as coordinates on."""
    assert CoordConv2d(2, 8, 3)._default_strategy() == "split-fusedbias"
    with LogOps() as log:
        CoordConv2d(2, 8, 3, padding=1)(torch.randn(5, 2, 6, 9))
    assert (5, 2, 6, 9) in log.convs and not [op for op in log.ops if op.startswith("cat")]
    # Fewer (a one-channel image): one convolution of the concatenation, which is
    # smaller than the output here.
    assert CoordConv2d(1, 8, 3)._default_strategy() == "concat-fusedbias"
    with LogOps() as log:
        CoordConv2d(1, 8, 3, padding=1)(torch.randn(5, 1, 6, 9))
    assert log.convs == [(5, 3, 6, 9)]
    assert CoordConv2d(4, 6, 3, groups=2)._default_strategy() == "concat-fusedbias"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3, padding=1),
        dict(kernel_size=3, stride=2, padding=2, dilation=2),
        dict(kernel_size=(2, 4), stride=(1, 3), padding=(0, 1)),
        dict(kernel_size=1),
    ],
    ids=case_id,
)
@pytest.mark.parametrize("with_r", [False, True])
def test_coord_patches_are_the_unfolded_grid(kwargs: dict, with_r: bool) -> None:
    """The cached patches equal torch's own im2col (F.unfold) of the linspace grid."""
    layer = CoordConv2d(3, 4, with_r=with_r, **kwargs).double()
    grid = ref_coords((6, 9), with_r, torch.float64).unsqueeze(0)  # (1, n, 6, 9)
    patches = layer._coord_patches(grid, layer._conv_forward)  # (1, n * k, H', W')
    unfold = torch.nn.functional.unfold
    geometry = {k: kwargs[k] for k in ("stride", "padding", "dilation") if k in kwargs}
    ref = unfold(grid, layer.kernel_size, **geometry)  # (1, n * k, H' * W'), same order
    assert patches.shape[:2] == ref.shape[:2]
    torch.testing.assert_close(patches.flatten(2), ref, rtol=0, atol=0)


def test_coord_patches_ignore_autocast() -> None:
    """Patches first made under bfloat16 autocast still hold the float32 coordinates."""
    layers._patch_cache.clear()
    layer = CoordConv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 31, 33)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x)
    patches = [p for p in layers._patch_cache.values() if p.shape[-2:] == (31, 33)]
    ref = layer._coord_patches(coord_grid((31, 33)), layer._conv_forward)
    assert len(patches) == 1 and patches[0].dtype == torch.float32
    torch.testing.assert_close(patches[0], ref, rtol=0, atol=0)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kwargs", CASES[:5] + CASES[-4:], ids=case_id)
def test_large_patches_convolve_the_grid(
    rank: int, kwargs: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the patch limit the grid is convolved instead: the same function."""
    monkeypatch.setattr(layers, "_PATCH_LIMIT", 0)
    torch.manual_seed(0)
    kw = dict(out_channels=4, **kwargs)
    layer = COORD_CLASSES[rank](3, with_r=True, **kw).double()
    twin = naive_twin(layer, TORCH_CLASSES[rank], rank + 1, **kw)
    n_cached = len(layers._patch_cache)
    check_grads(layer, twin, torch.randn(2, 3, *SPATIAL[rank], dtype=torch.float64), True, 1e-10)
    assert len(layers._patch_cache) == n_cached


def test_large_transposed_patches_convolve_the_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layers, "_PATCH_LIMIT", 0)
    torch.manual_seed(0)
    kw = dict(out_channels=4, kernel_size=3, stride=2, padding=1, output_padding=1)
    layer = CoordConvTranspose2d(3, **kw).double()
    twin = naive_twin(layer, nn.ConvTranspose2d, 2, **kw)
    check_grads(layer, twin, torch.randn(2, 3, 5, 7, dtype=torch.float64), False, 1e-10)


def test_patch_cache_is_bounded() -> None:
    layers._patch_cache.clear()
    layer = CoordConv1d(3, 2, 3)
    lengths = range(100, 100 + layers._PATCH_CACHE_SIZE + 5)
    for n in lengths:
        layer(torch.randn(1, 3, n))
    assert len(layers._patch_cache) == layers._PATCH_CACHE_SIZE
    kept = {n for n in lengths if any((1, n) in key for key in layers._patch_cache)}
    assert kept == set(lengths[5:])  # the least recently used went first


@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("channels", [3, 1], ids=["split", "concat"])
@pytest.mark.parametrize("kwargs", [CASES[0], CASES[4], CASES[-1]], ids=case_id)
def test_channels_last(rank: int, channels: int, kwargs: dict) -> None:
    """A channels-last layer and input give nn.ConvNd's channels-last output, and its values."""
    torch.manual_seed(0)
    fmt = {2: torch.channels_last, 3: torch.channels_last_3d}[rank]
    kw = dict(out_channels=4, **kwargs)
    layer = COORD_CLASSES[rank](channels, with_r=True, **kw).double()
    twin = naive_twin(layer, TORCH_CLASSES[rank], rank + 1, **kw)
    layer.to(memory_format=fmt)
    twin.to(memory_format=fmt)
    x = torch.randn(2, channels, *SPATIAL[rank], dtype=torch.float64).contiguous(memory_format=fmt)
    check_grads(layer, twin, x, True, 1e-10)
    out, ref = layer(x), twin(ref_concat(x, True).contiguous(memory_format=fmt))
    assert out.stride() == ref.stride()


def test_channels_last_response_matches_the_output_layout() -> None:
    """The broadcast add gets operands of one layout (across layouts it is a slow gather)."""
    layer = CoordConv2d(3, 8, 3, padding=1).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 6, 9).contiguous(memory_format=torch.channels_last)
    with LogOps() as log:
        layer(x)
    (out_strides, response_strides), *_ = log.adds
    assert out_strides[1] == 1 and response_strides[1] == 1  # channels innermost in both
    assert response_strides[0] == 0 or out_strides[2:] == response_strides[2:]


@pytest.mark.parametrize("channels", [3, 1], ids=["split", "concat"])
@pytest.mark.parametrize("cls", [CoordConv2d, CoordConvTranspose2d])
def test_meta_device(channels: int, cls: type[nn.Module]) -> None:
    """Shape inference on the meta device (no data) gives the torch.nn twin's shape."""
    kw = dict(out_channels=4, kernel_size=3, stride=2, padding=1)
    layer = cls(channels, device="meta", **kw)
    twin = (nn.Conv2d if cls is CoordConv2d else nn.ConvTranspose2d)(channels + 2, **kw)
    out = layer(torch.empty(2, channels, 5, 7, device="meta"))
    assert out.device.type == "meta"
    assert out.shape == twin(torch.zeros(2, channels + 2, 5, 7)).shape


@pytest.mark.parametrize("channels", [3, 1], ids=["split", "concat"])
def test_torch_compile_traces(channels: int) -> None:
    """torch.compile (dynamo and AOTAutograd, without code generation) gives the same values."""
    torch.manual_seed(0)
    layer = CoordConv2d(channels, 4, 3, padding=1, with_r=True).double()
    x = torch.randn(2, channels, 6, 7, dtype=torch.float64)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=False)
    out = compiled(x)
    torch.testing.assert_close(out, layer(x), rtol=1e-12, atol=1e-12)
    out.square().sum().backward()
    grad = layer.weight.grad.clone()
    layer.weight.grad = None
    layer(x).square().sum().backward()
    torch.testing.assert_close(grad, layer.weight.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [CoordConv1d, CoordConv2d, CoordConvTranspose2d])
def test_torch_compile_makes_one_graph(
    cls: type[nn.Module], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No graph break (each would split a compiled model): the default and every forced
    strategy trace into one graph, with the eager layer's output and gradients."""
    monkeypatch.setattr(layers._CoordConvNd, "_chunk", REAL_CHUNK)
    torch.manual_seed(0)
    layer = cls(3, 4, 3, padding=1, with_r=True)
    x = torch.randn(2, 3, *((9,) if cls is CoordConv1d else (6, 7)))
    for strategy in (None, *layer.strategies()):
        layer.strategy = strategy
        torch._dynamo.reset()
        explained = torch._dynamo.explain(layer)(x)
        breaks = [b.reason.splitlines()[0] for b in explained.break_reasons]
        assert (explained.graph_count, explained.graph_break_count) == (1, 0), (strategy, breaks)
        compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
        out = compiled(x)
        out.square().sum().backward()
        grad, layer.weight.grad = layer.weight.grad, None
        eager = layer(x)
        eager.square().sum().backward()
        torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(grad, layer.weight.grad, rtol=1e-5, atol=1e-5)
        layer.weight.grad = None


@pytest.mark.parametrize("channels", [3, 1], ids=["split", "concat"])
@pytest.mark.parametrize("cls", [CoordConv2d, CoordConvTranspose2d])
def test_double_backward(channels: int, cls: type[nn.Module]) -> None:
    """Second derivatives, as for nn.Conv2d (a gradient penalty needs them)."""
    torch.manual_seed(0)
    layer = cls(channels, 2, 3, padding=1, with_r=True).double()
    x = torch.randn(2, channels, 4, 5, dtype=torch.float64, requires_grad=True)
    params = (x, layer.weight, layer.bias)
    assert torch.autograd.gradgradcheck(
        lambda x, w, b: torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,)),
        params,
    )


@pytest.mark.parametrize("channels", [3, 1], ids=["split", "concat"])
def test_autocast_bfloat16(channels: int) -> None:
    """Under CPU autocast the layer runs in bfloat16 as nn.Conv2d does; its grads stay float32."""
    torch.manual_seed(0)
    layer = CoordConv2d(channels, 4, 3, padding=1)
    twin = naive_twin(layer, nn.Conv2d, 2, out_channels=4, kernel_size=3, padding=1)
    x = torch.randn(2, channels, 6, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
        ref = twin(ref_concat(x, False))
    assert out.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref, atol=3e-2, rtol=2e-2)
    out.float().square().sum().backward()
    ref.float().square().sum().backward()
    assert layer.weight.grad.dtype == torch.float32
    torch.testing.assert_close(layer.weight.grad, twin.weight.grad, atol=0.1, rtol=3e-2)
    torch.testing.assert_close(layer.bias.grad, twin.bias.grad, atol=0.1, rtol=3e-2)


@pytest.mark.parametrize("cls", [CoordConv2d, CoordConvTranspose2d])
@pytest.mark.parametrize("with_r", [False, True])
def test_groups_fall_back_to_naive(cls: type[nn.Module], with_r: bool) -> None:
    torch.manual_seed(0)
    c = 4 - with_r  # c + n_coords = 6, divisible by 2 and 3
    base = nn.Conv2d if cls is CoordConv2d else nn.ConvTranspose2d
    for groups in (2, 3):
        kw = dict(out_channels=6, kernel_size=3, padding=1, groups=groups)
        layer = cls(c, with_r=with_r, **kw).double()
        twin = naive_twin(layer, base, 2 + with_r, **kw)
        check_grads(layer, twin, torch.randn(2, c, 5, 7, dtype=torch.float64), with_r, 1e-10)


def test_groups_need_divisible_channels() -> None:
    with pytest.raises(ValueError, match=r"3 \+ 2 must be divisible by groups"):
        CoordConv2d(3, 4, 3, groups=2)


@pytest.mark.parametrize("with_r", [False, True])
def test_state_dict_round_trip(with_r: bool) -> None:
    torch.manual_seed(0)
    n = 2 + with_r
    x = torch.randn(2, 3, 5, 7)
    plain = nn.Conv2d(3 + n, 4, 3, padding=1)  # nn.Conv2d -> CoordConv2d
    layer = CoordConv2d(3, 4, 3, padding=1, with_r=with_r)
    layer.load_state_dict(plain.state_dict())
    torch.testing.assert_close(layer(x), plain(ref_concat(x, with_r)))
    other = CoordConv2d(3, 4, 3, padding=1, with_r=with_r)  # CoordConv2d -> nn.Conv2d
    back = nn.Conv2d(3 + n, 4, 3, padding=1)
    back.load_state_dict(other.state_dict())
    torch.testing.assert_close(back(ref_concat(x, with_r)), other(x))
    assert set(layer.state_dict()) == {"weight", "bias"}


def test_repr_shows_data_channels() -> None:
    layer = CoordConv2d(3, 4, 3, with_r=True)
    assert repr(layer) == "CoordConv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), with_r=True)"
    assert layer.in_channels_data == 3 and layer.n_coords == 3 and layer.in_channels == 6


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_bfloat16(rank: int) -> None:
    torch.manual_seed(0)
    kw = dict(out_channels=4, kernel_size=3, padding=1)
    layer = COORD_CLASSES[rank](3, with_r=True, **kw).to(torch.bfloat16)
    twin = TORCH_CLASSES[rank](3 + rank + 1, **kw).double()
    twin.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, *SPATIAL[rank], dtype=torch.bfloat16)
    out = layer(x)
    ref = twin(ref_concat(x.double(), True))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), ref, atol=3e-2, rtol=2e-2)
    out.float().sum().backward()
    ref.sum().backward()
    assert layer.weight.grad.dtype == torch.bfloat16
    torch.testing.assert_close(layer.weight.grad.double(), twin.weight.grad, atol=0.1, rtol=2e-2)
    torch.testing.assert_close(layer.bias.grad.double(), twin.bias.grad, atol=0.1, rtol=2e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("channels", [3, 1], ids=["split", "concat"])
def test_cuda(dtype: torch.dtype, channels: int) -> None:
    torch.manual_seed(0)
    layer = CoordConv2d(channels, 4, 3, padding=1, padding_mode="reflect", with_r=True)
    twin = nn.Conv2d(channels + 3, 4, 3, padding=1, padding_mode="reflect")
    twin.load_state_dict(layer.state_dict())
    x = torch.randn(2, channels, 5, 7)
    out = layer.to("cuda", dtype)(x.to("cuda", dtype))
    assert out.dtype == dtype and out.device.type == "cuda"
    ref = twin(ref_concat(x, True))
    torch.testing.assert_close(out.cpu().float(), ref, atol=1e-2, rtol=1e-2)
    out.float().sum().backward()
    ref.sum().backward()
    for p, p_ref in [(layer.weight, twin.weight), (layer.bias, twin.bias)]:
        assert p.grad.dtype == dtype
        torch.testing.assert_close(p.grad.cpu().float(), p_ref.grad, atol=5e-2, rtol=1e-2)
    # The cached patches hold the coordinates to the last bit or two (no TF32 on their way,
    # which would be off by 1e-3; CUDA's grid and radius round a few float32 values two ulp
    # away from the CPU's: seen on an H200, torch 2.11).
    patches = layer._coord_patches(coord_grid((5, 7), True, "cuda", dtype), layer._conv_forward)
    ref_patches = layer.cpu().float()._coord_patches(coord_grid((5, 7), True), layer._conv_forward)
    ulp = 0.0 if dtype == torch.float16 else torch.finfo(dtype).eps  # float16: exact
    torch.testing.assert_close(
        patches.cpu().float(), ref_patches.to(dtype).float(), atol=ulp, rtol=4 * ulp
    )


# ---------------------------------------------------------------- strategies and autotuning

STRATEGY_CASES = [CASES[0], CASES[1], CASES[4], CASES[7], CASES[-1]]


@pytest.mark.parametrize("strategy", layers.STRATEGIES)
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kwargs", STRATEGY_CASES, ids=case_id)
@pytest.mark.parametrize("channels", [3, 1])
def test_every_strategy_matches_naive(
    strategy: str, rank: int, kwargs: dict, channels: int
) -> None:
    """Each strategy, forced, is the naive concatenation: output and every gradient."""
    torch.manual_seed(0)
    kw = dict(out_channels=4, **kwargs)
    layer = COORD_CLASSES[rank](channels, with_r=True, **kw).double()
    if strategy not in layer.strategies():
        assert rank != 2 and strategy.endswith("+relayout")
        return
    layer.strategy = strategy
    twin = naive_twin(layer, TORCH_CLASSES[rank], rank + 1, **kw)
    x = torch.randn(3, channels, *SPATIAL[rank], dtype=torch.float64)
    check_grads(layer, twin, x, True, tol=1e-10)


@pytest.mark.parametrize("strategy", layers.STRATEGIES)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels-last"])
@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("bias", [True, False])
def test_every_strategy_keeps_the_layout(
    strategy: str, channels_last: bool, channels: int, bias: bool
) -> None:
    """Values and the output's strides are nn.Conv2d's in either layout, whatever runs inside."""
    torch.manual_seed(0)
    kw = dict(out_channels=4, kernel_size=3, stride=2, padding=1, bias=bias)
    layer = CoordConv2d(channels, **kw).double()
    layer.strategy = strategy
    twin = naive_twin(layer, nn.Conv2d, 2, **kw)
    x = torch.randn(3, channels, 6, 9, dtype=torch.float64)
    if channels_last:
        layer.to(memory_format=torch.channels_last)
        twin.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    check_grads(layer, twin, x, False, tol=1e-10)
    ref = twin(
        ref_concat(x, False).contiguous(
            memory_format=torch.channels_last if channels_last else torch.contiguous_format
        )
    )
    assert layer(x).stride() == ref.stride()


@pytest.mark.parametrize("strategy", layers.STRATEGIES)
@pytest.mark.parametrize("kwargs", TRANSPOSED_CASES[1:3], ids=case_id)
def test_every_strategy_transposed(strategy: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    kw = dict(out_channels=4, **kwargs)
    layer = CoordConvTranspose2d(3, with_r=True, **kw).double()
    layer.strategy = strategy
    twin = naive_twin(layer, nn.ConvTranspose2d, 3, **kw)
    check_grads(layer, twin, torch.randn(2, 3, 5, 7, dtype=torch.float64), True, 1e-10)


@pytest.mark.parametrize("strategy", layers.STRATEGIES)
@pytest.mark.parametrize("channels", [3, 1])
def test_every_strategy_double_backward(strategy: str, channels: int) -> None:
    torch.manual_seed(0)
    layer = CoordConv2d(channels, 2, 3, padding=1, with_r=True).double()
    layer.strategy = strategy
    x = torch.randn(2, channels, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(
        lambda x, w, b: torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,)),
        (x, layer.weight, layer.bias),
    )


@pytest.mark.parametrize("strategy", layers.STRATEGIES)
def test_every_strategy_autocast(strategy: str) -> None:
    torch.manual_seed(0)
    layer = CoordConv2d(3, 4, 3, padding=1)
    layer.strategy = strategy
    twin = naive_twin(layer, nn.Conv2d, 2, out_channels=4, kernel_size=3, padding=1)
    x = torch.randn(2, 3, 6, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, ref = layer(x), twin(ref_concat(x, False))
    assert out.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref, atol=3e-2, rtol=2e-2)
    out.float().square().sum().backward()
    ref.float().square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, twin.weight.grad, atol=0.1, rtol=3e-2)


@pytest.mark.parametrize("dense", [False, True], ids=["expanded-grad", "dense-grad"])
@pytest.mark.parametrize("strategy", layers.STRATEGIES)
def test_every_strategy_takes_an_empty_batch(strategy: str, dense: bool) -> None:
    """As nn.Conv2d: an empty output of the right shape, zero gradients, whether the output
    gradient is expanded (``out.sum()``) or a tensor of its own."""
    layer = CoordConv2d(3, 4, 3, padding=1)
    layer.strategy = strategy
    x = torch.randn(0, 3, 5, 6, requires_grad=True)
    out = layer(x)
    assert out.shape == (0, 4, 5, 6)
    out.backward(torch.ones_like(out) if dense else torch.ones(1).expand_as(out))
    assert x.grad.shape == x.shape
    assert torch.equal(layer.weight.grad, torch.zeros_like(layer.weight))
    assert torch.equal(layer.bias.grad, torch.zeros_like(layer.bias))


@pytest.mark.parametrize("strategy", layers.STRATEGIES)
def test_every_strategy_gradient_penalty_under_autocast(strategy: str) -> None:
    """Second derivatives through autocast's casts (a gradient penalty in bfloat16): the
    naive form's, as for the first derivatives."""
    torch.manual_seed(0)
    layer = CoordConv2d(3, 4, 3, padding=1)
    layer.strategy = strategy
    twin = naive_twin(layer, nn.Conv2d, 2, out_channels=4, kernel_size=3, padding=1)
    x = torch.randn(4, 3, 6, 5)

    def penalty_grad(model: nn.Module, weight: nn.Parameter, inputs: torch.Tensor) -> torch.Tensor:
        inputs = inputs.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(inputs)
        (grad,) = torch.autograd.grad(out.float().square().sum(), inputs, create_graph=True)
        (weight_grad,) = torch.autograd.grad(grad.square().sum(), weight)
        return weight_grad

    got = penalty_grad(layer, layer.weight, x)
    want = penalty_grad(nn.Sequential(AddCoords(2), twin), twin.weight, x)
    torch.testing.assert_close(got.norm(), want.norm(), rtol=0.05, atol=0)
    torch.testing.assert_close(got, want, rtol=0.1, atol=0.05 * want.abs().max().item())


@pytest.mark.parametrize("strategy", ["chunked-sumbias", "chunked-fusedbias"])
def test_chunked_sums_bfloat16_gradients_in_float32(
    strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 chunks of one image under bfloat16 autocast: the weight and bias gradients as
    close to float64's as the unchunked split form's (about 0.3%), not rounded to bfloat16
    once per chunk (1 to 1.7% when they were)."""
    monkeypatch.setattr(layers._CoordConvNd, "_chunk", lambda self, x: 1)
    torch.manual_seed(0)
    layer = CoordConv2d(8, 16, 3, padding=1)
    x, grad = torch.randn(64, 8, 16, 16), torch.randn(64, 16, 16, 16)
    exact = copy.deepcopy(layer).double()
    exact(x.double()).backward(grad.double())
    layer.strategy = strategy
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    out.backward(grad.to(out.dtype))
    for p, p_exact in [(layer.weight, exact.weight), (layer.bias, exact.bias)]:
        error = (p.grad.double() - p_exact.grad).norm() / p_exact.grad.norm()
        assert error < 0.006


def test_strategy_must_apply() -> None:
    layer = CoordConv2d(4, 6, 3, groups=2)  # coordinates in the last group: concat only
    assert layer.strategies() == (
        "concat-fusedbias",
        "concat-sumbias",
        "concat-sumbias+relayout",
        "concat-fusedbias+relayout",
    )
    layer.strategy = "split-sumbias"
    with pytest.raises(ValueError, match="strategy must be None or one of concat-fusedbias"):
        layer(torch.randn(1, 4, 5, 5))
    layer1d = CoordConv1d(3, 2, 3)
    layer1d.strategy = "split-sumbias+relayout"
    with pytest.raises(ValueError, match="got 'split-sumbias\\+relayout'"):
        layer1d(torch.randn(1, 3, 5))


def test_batch_sum_in_every_layout() -> None:
    """The broadcast's backward (a matrix-vector product where it can) is torch's batch sum."""
    torch.manual_seed(0)
    g = torch.randn(5, 4, 6, 7, dtype=torch.float64)
    grads = {
        "nchw": g,
        "channels-last": g.contiguous(memory_format=torch.channels_last),
        "strided": torch.randn(5, 8, 6, 7, dtype=torch.float64)[:, ::2],
        "expanded": g[:1].expand(5, -1, -1, -1),
        "float32": g.float(),
    }
    for name, grad in grads.items():
        with torch.no_grad():  # as autograd runs it (grad mode on: double backward)
            total, _ = layers._BatchBroadcast.backward(None, grad)
        assert total.shape == (1, 4, 6, 7), name
        torch.testing.assert_close(total, grad.sum(0, keepdim=True), msg=name)
        if name == "channels-last":
            assert total.stride(1) == 1


@pytest.fixture
def fresh_cache():
    """An empty choice cache and timing on, restored afterwards."""
    was = layers.autotune_enabled()
    layers.clear_autotune_cache()
    layers.set_autotune(True)
    yield
    layers.clear_autotune_cache()
    layers.set_autotune(was)


class CountMeasure:
    """Wraps layer_tuning.measure, counting the measurements of layer strategies (not of the
    batch sum in the backward pass, `_BatchBroadcast`, timed too where it applies)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = layer_tuning.measure

        def measure(candidates, *args, **kwargs):
            self.calls += tuple(candidates) != layers._SUMS
            return real(candidates, *args, **kwargs)

        monkeypatch.setattr(layer_tuning, "measure", measure)


def strategy_choices() -> dict:
    """The cached choices of layer strategies (without the batch sums')."""
    return {k: c for k, c in layers.autotune_choices().items() if k[0] != "batch-sum"}


@pytest.mark.usefixtures("fresh_cache")
def test_autotune_times_once_per_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    count = CountMeasure(monkeypatch)
    layer = CoordConv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 6, 7)
    layer(x).sum().backward()
    assert count.calls == 1
    ((key, choice),) = strategy_choices().items()
    assert set(choice.times_ms) == set(layer.strategies()) - {
        "concat-sumbias+relayout",
        "concat-fusedbias+relayout",
    }
    assert choice.strategy in choice.times_ms and choice.cost_ms > 0
    # The same configuration, another layer: the cached choice.
    CoordConv2d(3, 4, 3, padding=1)(torch.randn(2, 3, 6, 7)).sum().backward()
    assert count.calls == 1
    # Anything the speed depends on is a new configuration.
    layer(torch.randn(4, 3, 6, 7))  # batch
    layer.double()(x.double())  # dtype
    layer(x.double().requires_grad_())  # the input needs a gradient
    layer(x.double().contiguous(memory_format=torch.channels_last))  # layout
    CoordConv2d(3, 4, 3, padding=2).double()(x.double())  # geometry
    assert count.calls == 6 == len(strategy_choices())
    layers.clear_autotune_cache()
    layer(x.double())
    assert count.calls == 7


def test_chunk_holds_a_few_megabytes_of_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of about `_CHUNK_BYTES` of output (4 MiB): 8 images of 32 float32 channels of
    64x64, twice as many at stride 2, a quarter as many transposed at stride 2; at least one
    image per thread."""
    monkeypatch.setattr(layers._CoordConvNd, "_chunk", REAL_CHUNK)
    x = torch.randn(32, 3, 64, 64)
    assert CoordConv2d(3, 32, 3, padding=1)._chunk(x) == 8
    assert CoordConv2d(3, 32, 3, stride=2, padding=1)._chunk(x) == 32
    assert CoordConv2d(3, 32, 3, padding=1).double()._chunk(x.double()) == 4
    assert CoordConvTranspose2d(3, 32, 4, stride=2, padding=1)._chunk(x) == 2
    assert CoordConv1d(3, 32, 3)._chunk(torch.randn(32, 3, 4096)) == 8
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)
    assert CoordConv2d(3, 32, 3, padding=1)._chunk(x) == 16


@pytest.mark.usefixtures("fresh_cache")
def test_autotune_times_chunks_only_where_the_batch_makes_several(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A small output fits one chunk: the chunked forms are the split form then, untimed."""
    monkeypatch.setattr(layers._CoordConvNd, "_chunk", REAL_CHUNK)
    CoordConv2d(3, 4, 3, padding=1)(torch.randn(2, 3, 6, 7)).sum().backward()
    monkeypatch.setattr(layers, "_CHUNK_BYTES", 4 * 6 * 7 * 4)  # one image of output
    CoordConv2d(3, 4, 3, padding=1)(torch.randn(3, 3, 6, 7)).sum().backward()
    small, several = [set(c.times_ms) for c in strategy_choices().values()]
    assert not any(s.startswith("chunked") for s in small)
    assert {"chunked-sumbias", "chunked-fusedbias"} < several


@pytest.mark.usefixtures("fresh_cache")
def test_autotune_times_the_chunk_that_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """On crowded cores the strategies are timed on one thread; the chunked forms are
    still timed in the chunks the layer's two threads run (one image a thread here)."""
    monkeypatch.setattr(layers._CoordConvNd, "_chunk", REAL_CHUNK)
    monkeypatch.setattr(layers, "_CHUNK_BYTES", 1)
    monkeypatch.setattr(layers, "_crowded", lambda step, strategy: True)
    chunks = []
    apply = layers._ChunkedSplit.apply

    def record(*args):
        chunks.append(args[-1])
        return apply(*args)

    monkeypatch.setattr(layers._ChunkedSplit, "apply", record)
    torch.set_num_threads(2)
    try:
        layer = CoordConv2d(3, 4, 3, padding=1)
        layer(torch.randn(3, 3, 6, 7)).sum().backward()
    finally:
        torch.set_num_threads(1)
    (choice,) = strategy_choices().values()
    assert choice.clock.startswith("CPU, 1 thread")
    assert "chunked-sumbias" in choice.times_ms
    assert chunks and set(chunks) == {2}


@pytest.mark.usefixtures("fresh_cache")
def test_autotune_leaves_grads_rng_and_graph_alone() -> None:
    torch.manual_seed(0)
    layer = CoordConv2d(3, 4, 3, padding=1).double()
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    rng = torch.get_rng_state()
    out = layer(x)  # times the strategies first
    assert torch.equal(torch.get_rng_state(), rng)
    assert layer.weight.grad is None and x.grad is None
    (choice,) = strategy_choices().values()
    forced = copy.deepcopy(layer)
    forced.strategy = choice.strategy
    torch.testing.assert_close(out, forced(x), rtol=0, atol=0)
    out.sum().backward()
    twin = naive_twin(layer, nn.Conv2d, 2, out_channels=4, kernel_size=3, padding=1)
    x2 = x.detach().clone().requires_grad_()
    twin(ref_concat(x2, False)).sum().backward()
    torch.testing.assert_close(layer.weight.grad, twin.weight.grad)
    torch.testing.assert_close(x.grad, x2.grad)


@pytest.mark.usefixtures("fresh_cache")
def test_no_timing_where_it_cannot_or_need_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """No timing without gradients, on meta, under compile, dispatch modes or hooks."""
    count = CountMeasure(monkeypatch)
    layer = CoordConv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 6, 7)
    with torch.no_grad():
        layer(x)
    with torch.inference_mode():
        layer(x)
    frozen = CoordConv2d(3, 4, 3, padding=1).requires_grad_(False)
    frozen(x)
    CoordConv2d(3, 4, 3, padding=1, device="meta")(torch.empty(2, 3, 6, 7, device="meta"))
    with LogOps():
        layer(x)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        layer(x)
    torch.utils.checkpoint.checkpoint(layer, x, use_reentrant=False).sum().backward()
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=False)
    compiled(torch.randn(2, 3, 6, 7)).sum().backward()
    assert count.calls == 0 and not layers.autotune_choices()


@pytest.mark.usefixtures("fresh_cache")
@pytest.mark.parametrize("crowded", [False, True])
def test_crowded_cpu_times_one_thread(monkeypatch: pytest.MonkeyPatch, crowded: bool) -> None:
    """With other processes holding the cores, one thread's CPU time ranks the strategies."""
    monkeypatch.setattr(layers, "_crowded", lambda step, strategy: crowded)
    torch.set_num_threads(2)
    try:
        CoordConv2d(3, 4, 3, padding=1)(torch.randn(2, 3, 6, 7))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    (choice,) = strategy_choices().values()
    assert choice.clock == ("CPU, 1 thread (of 2: cores busy)" if crowded else "wall")


@pytest.mark.usefixtures("fresh_cache")
def test_off_switch_uses_the_fixed_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    count = CountMeasure(monkeypatch)
    layers.set_autotune(False)
    assert not layers.autotune_enabled()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 7)
    outs = []
    for _ in range(2):
        torch.manual_seed(1)
        layer = CoordConv2d(3, 4, 3, padding=1)
        out = layer(x)
        out.square().sum().backward()
        outs.append((out, layer.weight.grad))
    assert count.calls == 0
    forced = copy.deepcopy(layer)
    forced.strategy = forced._default_strategy()
    assert torch.equal(forced(x), outs[1][0])
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize(("value", "enabled"), [("0", False), ("off", False), ("1", True)])
def test_environment_switch(value: str, enabled: bool) -> None:
    code = "from cc_bench import layers; print(layers.autotune_enabled())"
    env = {**os.environ, "CC_BENCH_COORDCONV_AUTOTUNE": value}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(enabled)


def test_measure_keeps_the_fastest() -> None:
    """A fake clock: the fastest wins, ties go to the first, slow candidates are dropped."""
    now = [0.0]
    cost = {"a": 2.0, "b": 1.0, "c": 1.0, "d": 9.0}
    runs: list[str] = []

    def step(name: str) -> None:
        runs.append(name)
        now[0] += cost[name]

    choice = layer_tuning.measure(list(cost), step, clock=lambda: now[0])
    assert choice.strategy == "b"
    assert choice.times_ms == {"a": 2000.0, "b": 1000.0, "c": 1000.0, "d": 9000.0}
    # A warm-up step each, then visits (an untimed and a timed step). One round for all;
    # then only the two within 30% of the fastest go on.
    assert runs.count("d") == runs.count("a") == 3
    assert runs.count("b") == runs.count("c") == 1 + 2 * layer_tuning._ROUNDS
    before = len(runs)
    assert layer_tuning.measure(["b"], step).strategy == "b"  # one candidate: not run
    assert len(runs) == before


# ---------------------------------------------------------------- coordconvify


def check_converted(original: nn.Module, converted: nn.Module, x: torch.Tensor) -> None:
    original.eval()
    converted.eval()
    with torch.no_grad():
        torch.testing.assert_close(converted(x), original(x), atol=1e-5, rtol=1e-5)


def test_coordconvify_resnet18() -> None:
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = tv.models.resnet18(weights=None).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n_convs = sum(type(m) is nn.Conv2d for m in model.modules())
    first = coordconvify(model)
    every = coordconvify(model, where="all", with_r=True)

    assert type(model.conv1) is nn.Conv2d  # the original is untouched
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert isinstance(first.conv1, CoordConv2d) and first.conv1.weight.shape == (64, 5, 7, 7)
    assert (first.conv1.stride, first.conv1.padding, first.conv1.bias) == ((2, 2), (3, 3), None)
    assert torch.equal(first.conv1.weight[:, :3], model.conv1.weight)
    assert not first.conv1.weight[:, 3:].any()
    assert sum(isinstance(m, CoordConv2d) for m in first.modules()) == 1
    assert not [m for m in every.modules() if type(m) is nn.Conv2d]
    assert sum(isinstance(m, CoordConv2d) for m in every.modules()) == n_convs == 20
    assert not every.layer2[0].downsample[0].weight[:, 64:].any()

    x = torch.randn(2, 3, 32, 40)
    check_converted(model, first, x)
    check_converted(model, every, x)


def test_coordconvify_nature_cnn() -> None:
    gym = pytest.importorskip("gymnasium")
    layers = pytest.importorskip("stable_baselines3.common.torch_layers")
    import numpy as np

    torch.manual_seed(0)
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    model = layers.NatureCNN(space, features_dim=32)
    first = coordconvify(model, with_r=True)
    every = coordconvify(model, where="all")
    assert type(model.cnn[0]) is nn.Conv2d
    assert isinstance(first.cnn[0], CoordConv2d) and type(first.cnn[2]) is nn.Conv2d
    assert first.cnn[0].weight.shape == (32, 7, 8, 8) and first.cnn[0].stride == (4, 4)
    assert [type(every.cnn[i]) for i in (0, 2, 4)] == [CoordConv2d] * 3
    x = torch.rand(3, 4, 84, 84)
    check_converted(model, first, x)
    check_converted(model, every, x)


def test_coordconvify_trains_coordinate_weights() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3)).train()
    conv = coordconvify(model)
    assert conv[0].training
    conv(torch.randn(2, 1, 8, 8)).square().sum().backward()
    assert conv[0].weight.grad[:, 1:].abs().sum() > 0


def test_coordconvify_skips_grouped_and_subclasses() -> None:
    model = nn.Sequential(
        CoordConv2d(2, 4, 3), nn.Conv2d(4, 4, 3, groups=2), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 1)
    )
    first = coordconvify(model)
    assert [type(m) for m in first] == [CoordConv2d, nn.Conv2d, CoordConv2d, nn.Conv2d]
    assert first[0] is not model[0]  # still a copy
    every = coordconvify(model, where="all")
    assert [type(m) for m in every] == [CoordConv2d, nn.Conv2d, CoordConv2d, CoordConv2d]
    check_converted(model, every, torch.randn(2, 2, 9, 9))


def test_coordconvify_shared_and_bare_conv() -> None:
    conv = nn.Conv2d(3, 3, 3, padding=1, padding_mode="circular")
    model = nn.Sequential(conv, nn.ReLU(), conv)
    out = coordconvify(model)
    assert isinstance(out[0], CoordConv2d) and out[2] is out[0]
    check_converted(model, out, torch.randn(2, 3, 6, 6))
    bare = coordconvify(conv)
    assert isinstance(bare, CoordConv2d) and bare.padding_mode == "circular"
    check_converted(conv, bare, torch.randn(2, 3, 6, 6))


def test_coordconvify_keeps_dtype() -> None:
    model = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False)).double()
    out = coordconvify(model)
    assert out[0].weight.dtype == torch.float64 and out[0].bias is None
    check_converted(model, out, torch.randn(2, 2, 5, 5, dtype=torch.float64))


@pytest.mark.parametrize(
    ("model", "where", "match"),
    [
        (nn.Conv2d(1, 1, 1), "last", r"where must be 'first' or 'all', got 'last'"),
        (nn.Sequential(nn.Linear(2, 2), CoordConv2d(1, 1, 1)), "first", "found no nn.Conv2d"),
        (nn.Conv2d(4, 4, 3, groups=2), "first", r"only grouped nn.Conv2d layers \(groups > 1\)"),
        (nn.Conv2d(4, 4, 3, groups=4), "all", "only grouped"),
    ],
)
def test_coordconvify_errors(model: nn.Module, where: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        coordconvify(model, where=where)


@pytest.mark.usefixtures("fresh_cache")
def test_batch_sum_is_timed_and_both_ways_match_naive() -> None:
    """The backward's batch sum (matrix-vector product or reduction) is timed like the
    strategies; whichever runs, the coordinate weights' gradient is the naive form's."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 9, 8, dtype=torch.float64)
    layer = CoordConv2d(3, 5, 3, padding=1).double()
    layer.strategy = "split-sumbias"
    naive = nn.Conv2d(5, 5, 3, padding=1).double()
    naive.load_state_dict(layer.state_dict())
    naive(torch.cat([x, AddCoords(2)(x)[:, 3:]], 1)).square().sum().backward()
    layer(x).square().sum().backward()
    (key,) = [k for k in layers.autotune_choices() if k[0] == "batch-sum"]
    assert layers.autotune_choices()[key].strategy in layers._SUMS
    for how in layers._SUMS:
        layers.clear_autotune_cache()
        layer.zero_grad()
        layer_tuning.load_autotune_choices({key: layer_tuning.Choice(how, {how: 0.0}, 0.0)})
        layer(x).square().sum().backward()
        assert layers.autotune_choices()[key].strategy == how  # used, not timed again
        torch.testing.assert_close(layer.weight.grad, naive.weight.grad)
        torch.testing.assert_close(layer.bias.grad, naive.bias.grad)


# ------------------------------------------------ transforms, tracing, odd inputs


def per_sample_grads(layer: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """torch.func's per-sample gradients of a squared-output loss (vmap over grad)."""
    params = {k: v.detach() for k, v in layer.named_parameters()}

    def loss(p: dict[str, torch.Tensor], xb: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(layer, p, (xb[None],)).square().sum()

    return torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(params, x)


@pytest.mark.parametrize("strategy", [None, "split-sumbias", "chunked-fusedbias"])
def test_torch_func_transforms_and_forward_ad(strategy: str | None) -> None:
    """vmap over grad (per-sample gradients), jvp and forward-mode AD work, whatever strategy
    is forced (the split forms' autograd.Functions cannot run there: the concatenation
    does), and agree with the naive form's."""
    torch.manual_seed(0)
    layer = CoordConv2d(3, 4, 3, padding=1, dtype=torch.float64)
    layer.strategy = strategy
    twin = naive_twin(layer, nn.Conv2d, 2, out_channels=4, kernel_size=3, padding=1)
    x = torch.randn(5, 3, 6, 5, dtype=torch.float64)
    got = per_sample_grads(layer, x)
    for b in range(x.shape[0]):  # the reference: one backward per sample
        twin.zero_grad()
        twin(ref_concat(x[b : b + 1], False)).square().sum().backward()
        torch.testing.assert_close(got["weight"][b], twin.weight.grad)
        torch.testing.assert_close(got["bias"][b], twin.bias.grad)
    v = torch.randn_like(x)
    out, tangent = torch.func.jvp(layer, (x,), (v,))
    ref, ref_tangent = torch.func.jvp(lambda t: twin(ref_concat(t, False)), (x,), (v,))
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(tangent, ref_tangent)
    dw = torch.randn_like(layer.weight)
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(layer.weight.detach(), dw)
        out = torch.func.functional_call(layer, {"weight": dual, "bias": layer.bias}, (x,))
        tangent = torch.autograd.forward_ad.unpack_dual(out).tangent
    ref_tangent = F.conv2d(ref_concat(x, False), dw, padding=1)  # linear in the weight
    torch.testing.assert_close(tangent, ref_tangent)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # shapes become constants
@pytest.mark.parametrize("channels", [1, 3])
def test_jit_trace(channels: int) -> None:
    """torch.jit.trace records the layer (as plain ops) and the trace computes what the
    layer does, on another batch size too."""
    torch.manual_seed(0)
    layer = CoordConv2d(channels, 4, 3, padding=1).eval()
    with torch.no_grad():
        traced = torch.jit.trace(layer, torch.randn(2, channels, 6, 5))
        x = torch.randn(3, channels, 6, 5)
        torch.testing.assert_close(traced(x), layer(x))


@pytest.mark.parametrize("strategy", layers.STRATEGIES)
def test_float64_stays_float64_under_autocast(strategy: str) -> None:
    """Autocast leaves float64 alone (as it does nn.Conv2d): every strategy computes in it."""
    torch.manual_seed(0)
    layer = CoordConv2d(3, 4, 3, padding=1, dtype=torch.float64)
    layer.strategy = strategy
    twin = naive_twin(layer, nn.Conv2d, 2, out_channels=4, kernel_size=3, padding=1)
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
        ref = twin(ref_concat(x, False))
    assert out.dtype == ref.dtype == torch.float64
    torch.testing.assert_close(out, ref)


def test_coordinates_only_layer_trains(fresh_cache: None) -> None:
    """CoordConv2d(0, ...) sees only the coordinates: the concatenation is all it can run,
    and a training step with timing on works and matches the naive form."""
    torch.manual_seed(0)
    layer = CoordConv2d(0, 4, 3, padding=1)
    assert all(s.startswith("concat") for s in layer.strategies())
    twin = naive_twin(layer, nn.Conv2d, 2, out_channels=4, kernel_size=3, padding=1)
    check_grads(layer, twin, torch.randn(2, 0, 6, 5), False, 1e-5)


@pytest.mark.parametrize(
    ("layer", "x"),
    [
        (CoordConv1d(2, 3, 3, padding=1), torch.randn(2, 7)),
        (CoordConv2d(2, 3, 3, padding=1, with_r=True), torch.randn(2, 6, 5)),
        (CoordConv3d(2, 3, 3, padding=1), torch.randn(2, 3, 4, 5)),
        (CoordConvTranspose2d(2, 3, 3, stride=2), torch.randn(2, 6, 5)),
    ],
)
def test_unbatched_input(layer: nn.Module, x: torch.Tensor) -> None:
    """A (C, *spatial) input, as torch.nn's convolutions take it: the batch of one's output
    without its batch axis."""
    out = layer(x)
    ref = layer(x.unsqueeze(0))
    assert out.shape == ref.shape[1:]
    torch.testing.assert_close(out, ref[0])


def test_unbatched_transposed_output_size() -> None:
    layer = CoordConvTranspose2d(2, 3, 3, stride=2)
    assert layer(torch.randn(2, 6, 5), output_size=[14, 12]).shape == (3, 14, 12)


def test_bad_rank_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"4-D input of shape \(B, C, H, W\) or 3-D, unbatched"):
        CoordConv2d(2, 3, 3)(torch.randn(6, 5))

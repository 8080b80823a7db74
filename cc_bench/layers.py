"""CoordConv layers: convolutions that also see the pixel coordinates.

Reproduces the CoordConv layer of Liu et al. 2018, "An Intriguing Failing of
Convolutional Neural Networks and the CoordConv Solution", Section 2 and
Figure 3: the input is extended with one channel per spatial axis holding that
axis' coordinate scaled to [-1, 1] (and optionally the distance r from the
centre) before an ordinary convolution.

The layers keep the weight of the naive form (a convolution over
``cat([x, coords])``), so their state dicts are interchangeable with plain
``nn.ConvNd(in_channels + n_coords, ...)``, but with ``groups == 1`` they never
build that concatenation: the convolution is linear in its input, so they
convolve ``x`` with the data slice of the weight and add the response of the
coordinate grid (a batch of one, broadcast over the batch) to the coordinate
slice. That response is one small matrix product: the grid's patches under the
layer's kernel, stride, padding and dilation (its im2col, made once per input shape by
convolving the grid with an identity kernel, and cached) times the coordinate slice,
so no convolution of the grid runs per step, forward or backward. With ``groups > 1``
the coordinate channels fall into the last group, as in the naive form, which is then
what they compute.

Which exact formulation is fastest (split and add or the concatenation, the bias gradient
fused into the convolution's or a plain sum, the input's memory layout or the other one, on
the CPU the split form over the whole batch or a few images at a time)
depends on the kernels oneDNN picks for the processor, so the layers time their candidate
strategies on the first training step of each new configuration and cache the fastest
process-wide, as ``torch.backends.cudnn.benchmark`` does (``cc_bench.layer_tuning``);
``set_autotune(False)`` or ``CC_BENCH_COORDCONV_AUTOTUNE=0`` gives a fixed rule instead
(``_CoordConvNd._default_strategy``). Every strategy is the same function to float
tolerance.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch._prims_common import suggest_memory_format
from torch.autograd import forward_ad

from cc_bench import layer_tuning
from cc_bench.layer_tuning import (
    autotune_choices,
    autotune_enabled,
    clear_autotune_cache,
    set_autotune,
)

__all__ = [
    "STRATEGIES",
    "AddCoords",
    "CoordConv1d",
    "CoordConv2d",
    "CoordConv3d",
    "CoordConvTranspose2d",
    "autotune_choices",
    "autotune_enabled",
    "clear_autotune_cache",
    "coord_grid",
    "coordconvify",
    "set_autotune",
]

# The exact formulations a CoordConv layer chooses among (see _CoordConvNd._run_strategy):
# "split" convolves x with the data slice of the weight and adds the coordinates' response,
# "concat" convolves cat([x, coords]); "chunked" is "split" a few images at a time, each
# chunk's add and batch sum done while its output is still in the cache; "sumbias" sums
# the output gradient for the bias, "fusedbias" lets the convolution's backward compute it;
# "+relayout" (2-D layers) runs the layer in the other memory layout (NCHW <-> channels-last)
# and converts its output back.
STRATEGIES = (
    "split-sumbias",
    "split-fusedbias",
    "concat-sumbias",
    "concat-fusedbias",
    "split-sumbias+relayout",
    "split-fusedbias+relayout",
    "concat-sumbias+relayout",
    "concat-fusedbias+relayout",
    "chunked-sumbias",
    "chunked-fusedbias",
)
# Timed when nothing is forced: the concatenation in the other layout never won on the
# CPUs measured (docs/layers.md), so it is left out to keep the first step cheap; the
# chunked forms only on the CPU and where the batch makes more than one chunk.
_TIMED = tuple(s for s in STRATEGIES if not (s.startswith("concat") and s.endswith("+relayout")))
# A "chunked" strategy's chunk: the images whose output fills about this many bytes (a
# share of a core's L2 and L3 cache; at least one image per thread).
_CHUNK_BYTES = 4 << 20


@functools.lru_cache(maxsize=64)
def _cached_grid(
    shape: tuple[int, ...], with_r: bool, device: torch.device, dtype: torch.dtype
) -> Tensor:
    # A grid first made under inference_mode must still be usable by autograd later.
    with torch.inference_mode(False), torch.no_grad():
        # float64 grids are computed in float64; everything else in float32, then cast.
        work = torch.promote_types(dtype, torch.float32)
        axes = [
            torch.arange(n, device=device, dtype=work) * 2.0 / (n - 1) - 1.0
            if n > 1
            else torch.zeros(1, device=device, dtype=work)
            for n in shape
        ]
        coords = list(torch.meshgrid(*axes, indexing="ij"))  # rank x (*spatial)
        if with_r:
            coords.append(torch.stack(coords).square().sum(0).sqrt())
        return torch.stack(coords).unsqueeze(0).to(dtype)  # (1, n_coords, *spatial)


def coord_grid(
    spatial_shape: Sequence[int],
    with_r: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Return the cached coordinate grid of shape (1, n_coords, *spatial_shape).

    Channel k holds index / (size - 1) * 2 - 1 along spatial axis k (0 where the
    axis has size 1); with ``with_r`` a last channel holds sqrt of the sum of
    their squares. The same tensor object is returned for the same key: do not
    modify it in place.

    Args:
        spatial_shape: sizes of the spatial axes, e.g. (H, W).
        with_r: append the distance-from-centre channel.
        device: defaults to the CPU.
        dtype: defaults to ``torch.get_default_dtype()``.
    """
    device = torch.device(device if device is not None else "cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    dtype = dtype if dtype is not None else torch.get_default_dtype()
    key = (tuple(int(n) for n in spatial_shape), bool(with_r), device, dtype)
    if torch.compiler.is_compiling() or torch.jit.is_tracing():  # in the graph, not cached
        return _cached_grid.__wrapped__(*key)
    return _cached_grid(*key)


# Coordinate patches (see _CoordConvNd._coords_response): at most this many elements each,
# and this many kept, least recently used first out.
_PATCH_LIMIT = 1 << 22
_PATCH_CACHE_SIZE = 64
_patch_cache: OrderedDict[Hashable, Tensor] = OrderedDict()
_patch_lock = threading.Lock()


def _cached_patches(key: Hashable, build: Callable[[], Tensor]) -> Tensor:
    if torch.compiler.is_compiling():  # a lock would break the graph: build it in the graph
        return build()
    with _patch_lock:
        patches = _patch_cache.get(key)
        if patches is not None:
            _patch_cache.move_to_end(key)
            return patches
    patches = build()
    with _patch_lock:
        _patch_cache[key] = patches
        while len(_patch_cache) > _PATCH_CACHE_SIZE:
            _patch_cache.popitem(last=False)
    return patches


_SHAPES = {1: "(B, C, L)", 2: "(B, C, H, W)", 3: "(B, C, D, H, W)"}


def _check_rank(x: Tensor, rank: int, what: str, unbatched: bool = False) -> None:
    """A clear error unless ``x`` is (B, C, *spatial) (or, ``unbatched``, (C, *spatial))."""
    if x.dim() == rank + 2 or (unbatched and x.dim() == rank + 1):
        return
    also = f" or {rank + 1}-D, unbatched" if unbatched else ""
    raise ValueError(
        f"{what} expects a {rank + 2}-D input of shape {_SHAPES[rank]}{also}, "
        f"got shape {tuple(x.shape)}"
    )


class AddCoords(nn.Module):
    """Append the coordinate channels (and r with ``with_r``) to a (B, C, *spatial) input.

    Args:
        rank: number of spatial axes, 1, 2 or 3.
        with_r: also append the distance from the centre.
    """

    def __init__(self, rank: int, with_r: bool = False) -> None:
        super().__init__()
        if rank not in (1, 2, 3):
            raise ValueError(f"AddCoords rank must be 1, 2 or 3, got {rank!r}")
        self.rank = rank
        self.with_r = with_r

    @property
    def n_coords(self) -> int:
        """Number of channels added."""
        return self.rank + int(self.with_r)

    def forward(self, x: Tensor) -> Tensor:
        """Return cat([x, coords]) of shape (B, C + n_coords, *spatial)."""
        _check_rank(x, self.rank, f"AddCoords(rank={self.rank})")
        grid = coord_grid(x.shape[2:], self.with_r, x.device, x.dtype)  # (1, n, *spatial)
        return torch.cat([x, grid.expand(x.shape[0], *grid.shape[1:])], dim=1)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, with_r={self.with_r}"


def _coord_channels(in_channels: int, rank: int, with_r: bool, groups: int) -> int:
    n_coords = rank + int(with_r)
    if (in_channels + n_coords) % groups != 0:
        raise ValueError(
            f"CoordConv with groups={groups} convolves cat([x, coords]) directly, so "
            f"in_channels + n_coords = {in_channels} + {n_coords} must be divisible by "
            f"groups; choose in_channels so that it is (or use with_r to change n_coords)"
        )
    return n_coords


_Conv = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]  # (input, weight, bias) -> output


def _has_autocast(device_type: str) -> bool:
    """Whether autocast exists for ``device_type``.

    Under ``torch.compile`` the devices that have it are named: dynamo before torch 2.12
    cannot trace ``torch.amp.is_autocast_available`` and broke the layer's graph there
    (torch 2.11 on a lent H200; tests/test_layers.py, one graph per strategy).
    """
    if torch.compiler.is_compiling():
        return device_type in _AUTOCAST_DEVICES
    return torch.amp.is_autocast_available(device_type)


_AUTOCAST_DEVICES = frozenset({"cpu", "cuda", "xpu", "mps"})


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast runs convolutions in on ``device_type``, or None where it is off."""
    # is_autocast_available first: is_autocast_enabled raises for "meta", say.
    if _has_autocast(device_type) and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager[Any]:
    """Autocast off for ``device_type``; nothing to do where autocast does not exist."""
    if _has_autocast(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _autocast_operands(
    x: Tensor, weight: Tensor, bias: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The convolution's operands in autocast's dtype where it is on, as it runs nn.ConvNd
    (autocast leaves float64 alone)."""
    dtype = _autocast_dtype(x.device.type)
    if dtype is None or x.dtype == torch.float64:
        return x, weight, bias
    return x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype)


class _ConvolutionSumBias(torch.autograd.Function):
    """``torch.convolution`` whose backward sums the output gradient for the bias.

    Forward is torch's (bias fused). Backward calls ``convolution_backward`` for the input
    and weight gradients only; both it and the sum are differentiable, so double backward
    works as for ``nn.ConvNd``.
    """

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, params: tuple[Any, ...]
    ) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.params = params  # stride, padding, dilation, transposed, output_padding, groups
        with _no_autocast(x.device.type):
            return torch.convolution(x, weight, bias, *params)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_x or need_w:
            grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
                grad, x, weight, None, *ctx.params, [need_x, need_w, False]
            )
        if need_b:
            grad_b = grad.sum([0, *range(2, grad.dim())])  # (out,)
        return grad_x, grad_w, grad_b, None


class _ChunkedSplit(torch.autograd.Function):
    """The split form a chunk of the batch at a time: ``conv(x) + response``.

    The response (the coordinates' and, for "sumbias", the bias', (1, out, ...)) is added
    to each chunk's output while it is still in the cache, and backward sums each chunk of
    the output gradient over the batch for it right after that chunk's convolution backward
    has read it: the split form's two extra passes over the output, on a CPU where memory
    and not arithmetic bounds them, mostly hit the cache. The convolution's bias (None for
    "sumbias") is fused as torch fuses it. Double backward takes one unchunked,
    differentiable pass.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        response: Tensor,
        params: tuple[Any, ...],
        chunk: int,
    ) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.params, ctx.chunk = params, chunk
        ctx.bias_sizes = None if bias is None else list(bias.shape)
        response = response.to(x.dtype)  # the convolution's (autocast's, if on)
        out: Tensor | None = None
        with _no_autocast(x.device.type):
            for start in range(0, max(1, x.shape[0]), chunk):  # an empty batch: one call
                part = torch.convolution(x[start : start + chunk], weight, bias, *params)
                if out is None:  # batch outermost, the rest as the convolution lays it out
                    stride = (math.prod(part.shape[1:]), *part.stride()[1:])
                    out = part.new_empty_strided((x.shape[0], *part.shape[1:]), stride)
                torch.add(part, response, out=out[start : start + chunk])
        assert out is not None
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b, need_r = ctx.needs_input_grad[:4]
        bias_sizes = ctx.bias_sizes if need_b else None
        mask = [need_x, need_w, need_b]
        if torch.is_grad_enabled():  # double backward: differentiable, out= is not
            grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad, x, weight, bias_sizes, *ctx.params, mask
            )
            return grad_x, grad_w, grad_b, grad.sum(0, keepdim=True) if need_r else None, None, None
        # Sums over the chunks in at least float32 (bfloat16 would round each chunk's).
        acc = torch.promote_types(grad.dtype, torch.float32)
        grad_x = torch.empty_like(x) if need_x else None
        grad_w = torch.zeros_like(weight, dtype=acc) if need_w else None
        grad_b = grad.new_zeros(ctx.bias_sizes, dtype=acc) if need_b else None
        grad_r = None
        if need_r:  # grad's layout (an empty batch: any)
            like = grad[:1] if grad.shape[0] else grad.new_empty((1, *grad.shape[1:]))
            grad_r = torch.zeros_like(like, dtype=acc)
        # A chunk's batch sum: one matrix-vector product into grad_r where the layout allows.
        rows = None if grad_r is None or not grad.shape[0] else _batch_rows(grad, grad_r)
        for start in range(0, max(1, x.shape[0]), ctx.chunk):
            part = grad[start : start + ctx.chunk]
            if need_x or need_w or need_b:
                gx, gw, gb = torch.ops.aten.convolution_backward(
                    part, x[start : start + ctx.chunk], weight, bias_sizes, *ctx.params, mask
                )
                if need_x:
                    grad_x[start : start + ctx.chunk] = gx  # type: ignore[index]
                if need_w:
                    grad_w += gw  # type: ignore[operator]
                if need_b:
                    grad_b += gb  # type: ignore[operator]
            if rows is not None:
                ones = part.new_ones(part.shape[0])
                flat_r = grad_r.as_strided((grad_r.numel(),), (1,))  # type: ignore[union-attr]
                flat_r.addmv_(rows[start : start + ctx.chunk].T, ones)
            elif need_r:
                grad_r += part.sum(0, keepdim=True, dtype=acc)  # type: ignore[operator]
        sums = [None if g is None else g.to(grad.dtype) for g in (grad_w, grad_b, grad_r)]
        return grad_x, *sums, None, None


def _batch_rows(grad: Tensor, total: Tensor) -> Tensor | None:
    """``grad`` viewed (B, n), row b its item b in the memory order of the dense ``total``
    (a batch of one in ``grad``'s layout), so a batch sum is one matrix-vector product
    ``rows.T @ ones`` into ``total``; None where ``grad``'s strides do not allow it (the batch
    not outermost, items not dense, an expanded gradient) or its dtype is not float32/64."""
    n = math.prod(grad.shape[1:])
    if (
        grad.dtype in (torch.float32, torch.float64)
        and grad.stride(0) == n
        and grad.stride()[1:] == total.stride()[1:]
    ):
        return grad.as_strided((grad.shape[0], n), (n, 1))
    return None


_SUMS = ("mv", "sum")  # how `_BatchBroadcast` sums a gradient over the batch


class _BatchBroadcast(torch.autograd.Function):
    """``x.expand(batch, ...)`` of a batch of one, its backward summed in the gradient's layout.

    torch's own batch sum (what a broadcast add's backward does) writes a contiguous result:
    for a channels-last gradient that is a gather across layouts, 20x slower (a (32, 32, 64,
    64) gradient: 9 ms against 0.45 ms).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, batch: int) -> Tensor:
        return x.expand(batch, *x.shape[1:])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        # Double backward (out= is not differentiable) and torch.compile (one graph: the
        # compiler chooses the reduction) take torch's own sum.
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return grad.sum(0, keepdim=True), None
        total = torch.empty_like(grad[:1])  # the gradient's layout
        # The sum as one matrix-vector product where the layout allows. Which is faster
        # depends on the CPU: on a Zen 3 VM under load the product was twice as fast as
        # torch's reduction over the outer axis (a (32, 32, 64, 64) gradient: 0.3 against
        # 0.7 ms), on an idle Zen 5 VM half as fast (0.67 against 0.31 ms); so it is timed
        # once per shape, as the layer's strategies are (the product when timing is off).
        rows = _batch_rows(grad, total)
        if grad.device.type == "cpu" and grad.shape[0] > 1 and rows is not None:
            ones = torch.ones(grad.shape[0], dtype=grad.dtype)

            def batch_sum(how: str) -> None:
                if how == "mv":
                    torch.mv(rows.T, ones, out=total.as_strided((total.numel(),), (1,)))
                else:
                    torch.sum(grad, 0, keepdim=True, out=total)

            how = "mv"
            if layer_tuning.autotune_enabled():
                key = ("batch-sum", tuple(grad.shape), grad.stride(), grad.dtype)
                how = layer_tuning.choose((*key, torch.get_num_threads()), _SUMS, batch_sum)
            batch_sum(how)
            return total, None
        return torch.sum(grad, 0, keepdim=True, out=total), None


def _to_layout(t: Tensor, fmt: torch.memory_format) -> Tensor:
    """``t`` with the strides of ``fmt`` (a copy unless it has them already).

    ``contiguous(memory_format=...)`` keeps a tensor whose strides fit both layouts (one
    channel, a 1x1 kernel) as it is, and torch reads those as NCHW; ``clone`` sets them.
    """
    return t if suggest_memory_format(t) == fmt else t.clone(memory_format=fmt)


def _plain_ops_only() -> bool:
    """Whether the layer must run as plain torch ops: under torch.func transforms (vmap,
    grad, jvp, jacrev), forward-mode AD and torch.jit tracing, which the split and
    sum-bias forms' ``autograd.Function``s (backward only) do not support."""
    return (
        torch.jit.is_tracing()
        or torch._C._are_functorch_transforms_active()
        or forward_ad._current_level >= 0
    )


def _sync(device: torch.device) -> None:
    """Wait for ``device``'s queued work (timing on an accelerator); nothing on the CPU."""
    if device.type != "cpu":
        torch.accelerator.synchronize(device)


def _can_time(x: Tensor, weight: Tensor, bias: Tensor | None) -> bool:
    """Whether strategies may be timed now: a plain eager training step with autotuning on.

    Not under torch.compile, dispatch modes (fake or meta tensors, op logging), saved-tensor
    hooks (activation checkpointing), on the meta device, or when no gradient is wanted (the
    fixed rule serves inference). jit tracing and torch.func transforms never get here: they
    run the concatenation (`_plain_ops_only`).
    """
    tensors = [t for t in (x, weight, bias) if t is not None]
    return (
        layer_tuning.autotune_enabled()
        and torch.is_grad_enabled()
        and any(t.requires_grad for t in tensors)
        and x.device.type != "meta"
        and type(x) is Tensor
        and all(type(t) in (Tensor, nn.Parameter) for t in tensors)
        and not torch.compiler.is_compiling()
        and torch.utils._python_dispatch._get_current_dispatch_mode() is None
        and torch._C._autograd._top_saved_tensors_default_hooks(False) is None
    )


# Below this share of its threads' time on the CPU, a step ran on a crowded machine.
_CROWDED = 0.7


def _crowded(step: Callable[[str], None], strategy: str) -> bool:
    """Whether other processes hold the cores: one step (a warm-up) got under `_CROWDED`
    of its threads' time on the CPU (idle, the threads work or spin: about 1)."""
    step(strategy)  # builds kernels, grid and patches
    wall, cpu = time.perf_counter(), time.process_time()
    step(strategy)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return cpu < _CROWDED * wall * torch.get_num_threads()


class _CoordConvNd:
    """Forward pass shared by the CoordConv classes (a mixin over nn.ConvNd).

    As in torch, the attribute ``in_channels`` counts the weight's input channels
    (data and coordinates); ``in_channels_data`` is the constructor's argument.

    ``strategy`` (None by default) forces one of ``STRATEGIES`` for this layer; None times
    the applicable ones on the first training step of each configuration (see
    ``cc_bench.layer_tuning``) or, with autotuning off, uses ``_default_strategy``.
    """

    rank: int
    with_r: bool
    in_channels_data: int
    n_coords: int
    strategy: str | None
    _split_dim: int  # the weight's input-channel axis: 1 for conv, 0 for transposed

    def _init_coords(self, in_channels: int, with_r: bool) -> None:
        self.with_r = with_r
        self.in_channels_data = in_channels
        self.n_coords = self.rank + int(with_r)
        self.strategy = None

    def strategies(self) -> tuple[str, ...]:
        """The strategies this layer can run, its default first.

        With ``groups > 1`` the coordinates fall into the last group: only the
        concatenation computes that. "+relayout" is for 2-D layers (NCHW and channels-last).
        """
        default = self._default_strategy()
        # Grouped, or no data channels to split off: the concatenation only.
        split = self.groups == 1 and self.in_channels_data > 0
        names = [s for s in STRATEGIES if split or s.startswith("concat")]
        names = [s for s in names if self.rank == 2 or "+relayout" not in s]
        return (default, *(s for s in names if s != default))

    def _default_strategy(self) -> str:
        """The fixed rule used when nothing is timed (autotuning off, inference).

        The split form from as many input channels as coordinates on; below that (a
        one-channel image) the concatenation, which is then smaller than the output whose
        extra passes the split form pays. The bias gradient fused as torch does.
        """
        if self.groups > 1 or self.in_channels_data < self.n_coords:
            return "concat-fusedbias"
        return "split-fusedbias"

    def _coords_forward(
        self, x: Tensor, conv: _Conv, output_padding: tuple[int, ...] = ()
    ) -> Tensor:
        _check_rank(x, self.rank, type(self).__name__, unbatched=True)
        if x.shape[-self.rank - 1] != self.in_channels_data:
            raise ValueError(
                f"{type(self).__name__} expects {self.in_channels_data} input channels "
                f"(without the coordinates), got input of shape {tuple(x.shape)}"
            )
        if x.dim() == self.rank + 1:  # unbatched (C, *spatial), as nn.ConvNd takes it
            return self._coords_forward(x.unsqueeze(0), conv, output_padding).squeeze(0)
        grid = coord_grid(x.shape[2:], self.with_r, x.device, x.dtype)  # (1, n, *spatial)
        strategy = self._choose(x, grid, conv, output_padding)
        return self._run_strategy(strategy, x, grid, self.weight, self.bias, conv, output_padding)

    def _choose(self, x: Tensor, grid: Tensor, conv: _Conv, output_padding: tuple[int, ...]) -> str:
        """This call's strategy: forced, cached, timed now, or the fixed rule; the
        concatenation, whatever is forced, where only plain torch ops may run."""
        if _plain_ops_only():
            return "concat-fusedbias"
        if self.strategy is not None:
            if self.strategy not in self.strategies():
                raise ValueError(
                    f"{type(self).__name__}.strategy must be None or one of "
                    f"{', '.join(self.strategies())}, got {self.strategy!r}"
                )
            return self.strategy
        if torch.compiler.is_compiling():
            # One graph the compiler can fuse: the concatenation and the convolution (the
            # split forms' caches and autograd.Functions would break it into several).
            return "concat-fusedbias"
        if not _can_time(x, self.weight, self.bias):
            return self._default_strategy()
        w, b = self.weight, self.bias
        key = (
            type(self).__name__,
            self.in_channels_data,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.padding_mode,
            self.with_r,
            b is not None,
            output_padding,
            tuple(x.shape),
            x.stride(),  # the layout
            w.stride(),
            x.device,
            x.dtype,
            _autocast_dtype(x.device.type),
            (x.requires_grad, w.requires_grad, b is not None and b.requires_grad),
            torch.get_num_threads(),
        )
        if (cached := layer_tuning.cached_choice(key)) is not None:
            return cached.strategy

        # Timed on detached copies, so the layer's .grad and the autograd graph of the
        # caller are untouched; the output gradient is ones (no RNG is consumed).
        xd = x.detach().requires_grad_(x.requires_grad)
        wd = w.detach().requires_grad_(w.requires_grad)
        bd = None if b is None else b.detach().requires_grad_(b.requires_grad)
        inputs = [t for t in (xd, wd, bd) if t is not None and t.requires_grad]
        grad_out: list[Tensor] = []

        # The chunk the layer will run with, all its threads (timing may take one).
        chunk = self._chunk(x)

        def step(strategy: str) -> None:
            out = self._run_strategy(strategy, xd, grid, wd, bd, conv, output_padding, chunk)
            if not grad_out:
                grad_out.append(torch.ones_like(out))
            torch.autograd.grad(out, inputs, grad_out[0])

        chunks = x.device.type == "cpu" and chunk < x.shape[0]
        candidates = [
            s for s in self.strategies() if s in _TIMED and (chunks or not s.startswith("chunked"))
        ]
        sync = functools.partial(_sync, x.device)
        threads = torch.get_num_threads()
        if x.device.type != "cpu" or (threads > 1 and not _crowded(step, candidates[0])):
            return layer_tuning.choose(key, candidates, step, sync)
        # One CPU thread, timed by its own CPU time: other processes holding the cores
        # (a shared machine) do not count, where they make wall times a lottery.
        torch.set_num_threads(1)
        try:
            clock_name = "CPU, 1 thread" + (f" (of {threads}: cores busy)" if threads > 1 else "")
            return layer_tuning.choose(key, candidates, step, sync, time.thread_time, clock_name)
        finally:
            torch.set_num_threads(threads)

    def _run_strategy(
        self,
        strategy: str,
        x: Tensor,
        grid: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        conv: _Conv,
        output_padding: tuple[int, ...],
        chunk: int | None = None,
    ) -> Tensor:
        """The layer's output by ``strategy`` (one of ``STRATEGIES``), weight and bias given;
        ``chunk`` images at a time for the chunked forms (default `_chunk`'s)."""
        form, _, rest = strategy.partition("-")
        fused, relayout = rest.startswith("fusedbias"), rest.endswith("+relayout")
        inside = outside = None  # the layout of the output the caller gets: torch's
        if relayout:  # the other layout inside (input and weight), the caller's outside
            # Channels-last if the input or the weight is, as torch's 2-D convolutions decide.
            layouts = {suggest_memory_format(x), suggest_memory_format(weight)}
            cl = torch.channels_last
            outside = cl if cl in layouts else torch.contiguous_format
            inside = torch.contiguous_format if outside == cl else cl
            x, weight = _to_layout(x, inside), _to_layout(weight, inside)
        if form == "concat":
            xc = torch.cat([x, grid.expand(x.shape[0], *grid.shape[1:])], dim=1)
            if inside is not None:
                xc = _to_layout(xc, inside)
            if fused:
                out = conv(xc, weight, bias)
            else:
                out = self._convolution_sum_bias(xc, weight, bias, output_padding)
            return out if outside is None else _to_layout(out, outside)
        w_x, w_c = weight.split([self.in_channels_data, self.n_coords], self._split_dim)
        if form == "chunked":
            # The output's layout, as torch's convolutions decide it: channels-last if the
            # input or the weight is.
            layouts = {suggest_memory_format(x), suggest_memory_format(weight)}
            cl = {torch.channels_last, torch.channels_last_3d}
            cl_out = self.out_channels > 1 and bool(layouts & cl)
            response = self._coords_response(
                grid, w_c, None if fused else bias, conv, output_padding, cl_out
            )
            xr, params = self._raw_convolution(x, output_padding)
            operands = _autocast_operands(xr, w_x, bias if fused else None)
            chunk = self._chunk(x) if chunk is None else chunk
            return _ChunkedSplit.apply(*operands, response, params, chunk)
        out = conv(x, w_x, bias if fused else None)  # (B, out, *spatial_out)
        # The bias folded into the response ("sumbias"): its gradient is then the sum of
        # the batch-summed output gradient that the coordinate slice needs anyway.
        # A channels-last output (its channels innermost) gets a channels-last response: a
        # broadcast add across layouts is a strided gather, 15x slower (toy.classification).
        cl_out = out.shape[1] > 1 and out.stride(1) == 1
        response = self._coords_response(
            grid, w_c, None if fused else bias, conv, output_padding, cl_out
        )
        # One broadcast add over the batch, in place (no convolution needs its own output
        # for backward).
        out = out.add_(_BatchBroadcast.apply(response, out.shape[0]))  # + (1, out, ...)
        return out if outside is None else _to_layout(out, outside)

    def _convolution_sum_bias(
        self, x: Tensor, weight: Tensor, bias: Tensor | None, output_padding: tuple[int, ...]
    ) -> Tensor:
        """The layer's convolution of the concatenation ``x``, bias gradient a plain sum.

        The same function as ``nn.ConvNd`` (padding modes and "same" by padding ``x`` first,
        as it does), but its backward asks the convolution for the input and weight
        gradients only and sums the output gradient for the bias: on Zen 3 oneDNN's fused
        bias gradient costs 1 to 1.4 ms on a (32, 32, 64, 64) gradient, the sum 0.2 ms; on
        Zen 5 the fused one is the faster (docs/layers.md).
        """
        x, params = self._raw_convolution(x, output_padding)
        return _ConvolutionSumBias.apply(*_autocast_operands(x, weight, bias), params)

    def _raw_convolution(
        self, x: Tensor, output_padding: tuple[int, ...]
    ) -> tuple[Tensor, tuple[Any, ...]]:
        """``x`` and the arguments of ``torch.convolution`` after the weight and bias that
        compute the layer's convolution of it (padding modes and "same" by padding ``x``
        first, as ``nn.ConvNd`` does)."""
        zeros = (0,) * self.rank
        transposed = self._split_dim == 0
        padding = self.padding
        if not transposed and (self.padding_mode != "zeros" or isinstance(padding, str)):
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=mode)
            padding = zeros
        geometry = (self.stride, padding, self.dilation, transposed, output_padding or zeros)
        return x, (*geometry, self.groups)

    def _chunk(self, x: Tensor) -> int:
        """A "chunked" strategy's images per chunk for input ``x``: about `_CHUNK_BYTES` of
        output, at least one image per thread."""
        if torch.compiler.is_compiling():  # one chunk: the thread count is not traceable
            return max(1, x.shape[0])
        # The output's positions, about: the input's over the stride (times it, transposed).
        positions, stride = math.prod(x.shape[2:]), math.prod(self.stride)
        positions = positions * stride if self._split_dim == 0 else positions // stride
        item = max(1, self.out_channels * positions * x.element_size())
        return max(torch.get_num_threads(), _CHUNK_BYTES // item)

    def _coords_response(
        self,
        grid: Tensor,
        w_c: Tensor,
        bias: Tensor | None,
        conv: _Conv,
        output_padding: tuple[int, ...] = (),
        channels_last: bool = False,
    ) -> Tensor:
        """The coordinate slice's response to the grid plus ``bias``, (1, out, *spatial_out).

        A matrix product of the slice with the grid's cached patches: forward and backward
        are then one small GEMM each, where a convolution of a batch of one costs a kernel
        launch and, on the CPU, a slow weight-gradient path (benchmarks/layers.py). Patches
        over `_PATCH_LIMIT` elements (a large 3-D input) are not cached: the grid is
        convolved instead.
        """
        n, k = self.n_coords, math.prod(self.kernel_size)
        # Output positions: at most the input's (conv), or stride times more (transposed).
        positions = math.prod(grid.shape[2:]) * (
            math.prod(self.stride) if self._split_dim == 0 else 1
        )
        if n * k * positions > _PATCH_LIMIT:
            return conv(grid, w_c, bias)
        geometry = (type(self), self.kernel_size, self.stride, self.padding, self.dilation)
        layer = (*geometry, self.padding_mode, output_padding)
        key = (*layer, tuple(grid.shape[1:]), grid.device, grid.dtype)  # n_coords, spatial
        patches = _cached_patches(key, lambda: self._coord_patches(grid, conv))
        w = w_c if self._split_dim == 1 else w_c.transpose(0, 1)  # (out, n, *kernel)
        w = w.reshape(w.shape[0], n * k)  # (out, n * k), column c * k + kernel offset
        cols = patches.view(n * k, -1)  # (n * k, positions out)
        spatial_out = patches.shape[2:]
        if channels_last:  # (positions out, out), viewed (1, out, *spatial_out)
            r = cols.T @ w.T if bias is None else torch.addmm(bias, cols.T, w.T)
            return r.view(1, *spatial_out, -1).movedim(-1, 1)
        r = w @ cols if bias is None else torch.addmm(bias.unsqueeze(1), w, cols)
        return r.view(1, -1, *spatial_out)

    def _coord_patches(self, grid: Tensor, conv: _Conv) -> Tensor:
        """The grid's patches, (1, n * k, *spatial_out): channel c * k + kernel offset.

        The layer's own convolution (its padding mode, stride, dilation, output padding)
        of the grid with an identity kernel, so every channel holds one coordinate seen
        through one kernel position: each output is a single coordinate times 1, exact.
        """
        n, kernel = self.n_coords, tuple(self.kernel_size)
        k = math.prod(kernel)
        # float64: every kernel computes it exactly (cuDNN's TF32, Winograd and FFT
        # algorithms are float32 and float16 only); MPS has no float64.
        work = torch.float32 if grid.device.type == "mps" else torch.float64
        eye = torch.eye(n * k, device=grid.device, dtype=work)
        if self._split_dim == 1:  # conv weight (n * k, n, *kernel): out c*k+o reads (c, o)
            ident = eye.view(n * k, n, *kernel)
        else:  # transposed weight (n, n * k, *kernel): input c writes out c*k+o at o
            ident = eye.view(n, k, n * k).transpose(1, 2).reshape(n, n * k, *kernel)
        with torch.inference_mode(False), torch.no_grad(), _no_autocast(grid.device.type):
            return conv(grid.to(work), ident, None).to(grid.dtype).contiguous()

    def extra_repr(self) -> str:
        # Show the constructor's in_channels (data only), so the repr rebuilds the layer.
        s = super().extra_repr()  # type: ignore[misc]
        s = f"{self.in_channels_data}" + s[len(str(self.in_channels)) :]
        return s + (", with_r=True" if self.with_r else "")


class CoordConv1d(_CoordConvNd, nn.Conv1d):
    """Drop-in ``nn.Conv1d`` that also sees the coordinate (and r with ``with_r``).

    ``weight`` has ``in_channels + n_coords`` input channels, the coordinate ones last.
    """

    rank = 1
    _split_dim = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] = 1,
        padding: str | int | tuple[int] = 0,
        dilation: int | tuple[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        with_r: bool = False,
    ) -> None:
        n = _coord_channels(in_channels, self.rank, with_r, groups)
        rest = (stride, padding, dilation, groups, bias, padding_mode, device, dtype)
        super().__init__(in_channels + n, out_channels, kernel_size, *rest)
        self._init_coords(in_channels, with_r)

    def forward(self, input: Tensor) -> Tensor:
        """Return the convolution of cat([input, coords]), (B, C, L) -> (B, out, L_out)."""
        return self._coords_forward(input, self._conv_forward)


class CoordConv2d(_CoordConvNd, nn.Conv2d):
    """Drop-in ``nn.Conv2d`` that also sees the coordinates i, j (and r with ``with_r``).

    ``weight`` has ``in_channels + n_coords`` input channels, the coordinate ones last
    (i, varying along the height, then j, along the width, then r), so its state dict
    is that of ``nn.Conv2d(in_channels + n_coords, ...)``.
    """

    rank = 2
    _split_dim = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str | int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        with_r: bool = False,
    ) -> None:
        n = _coord_channels(in_channels, self.rank, with_r, groups)
        rest = (stride, padding, dilation, groups, bias, padding_mode, device, dtype)
        super().__init__(in_channels + n, out_channels, kernel_size, *rest)
        self._init_coords(in_channels, with_r)

    def forward(self, input: Tensor) -> Tensor:
        """Return the convolution of cat([input, coords]), (B, C, H, W) -> (B, out, H', W')."""
        return self._coords_forward(input, self._conv_forward)


class CoordConv3d(_CoordConvNd, nn.Conv3d):
    """Drop-in ``nn.Conv3d`` that also sees the three coordinates (and r with ``with_r``).

    ``weight`` has ``in_channels + n_coords`` input channels, the coordinate ones last.
    """

    rank = 3
    _split_dim = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int],
        stride: int | tuple[int, int, int] = 1,
        padding: str | int | tuple[int, int, int] = 0,
        dilation: int | tuple[int, int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        with_r: bool = False,
    ) -> None:
        n = _coord_channels(in_channels, self.rank, with_r, groups)
        rest = (stride, padding, dilation, groups, bias, padding_mode, device, dtype)
        super().__init__(in_channels + n, out_channels, kernel_size, *rest)
        self._init_coords(in_channels, with_r)

    def forward(self, input: Tensor) -> Tensor:
        """Return the convolution of cat([input, coords]), (B, C, D, H, W) -> (B, out, ...)."""
        return self._coords_forward(input, self._conv_forward)


class CoordConvTranspose2d(_CoordConvNd, nn.ConvTranspose2d):
    """Drop-in ``nn.ConvTranspose2d`` that also sees the coordinates (and r with ``with_r``).

    ``weight`` has shape (in_channels + n_coords, out_channels / groups, kH, kW), the
    coordinate input channels last, as for ``nn.ConvTranspose2d(in_channels + n_coords, ...)``.
    """

    rank = 2
    _split_dim = 0

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        with_r: bool = False,
    ) -> None:
        n = _coord_channels(in_channels, self.rank, with_r, groups)
        rest = (stride, padding, output_padding, groups, bias, dilation, padding_mode, device)
        super().__init__(in_channels + n, out_channels, kernel_size, *rest, dtype)
        self._init_coords(in_channels, with_r)

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        """Return the transposed convolution of cat([input, coords]), (B, C, H, W) -> (B, out, H', W')."""
        _check_rank(input, self.rank, type(self).__name__, unbatched=True)
        output_padding = self._output_padding(
            input, output_size, self.stride, self.padding, self.kernel_size, 2, self.dilation
        )

        def conv(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
            return F.conv_transpose2d(
                x,
                weight,
                bias,
                self.stride,
                self.padding,
                output_padding,
                self.groups,
                self.dilation,
            )

        return self._coords_forward(input, conv, tuple(output_padding))


def coordconvify(model: nn.Module, where: str = "first", with_r: bool = False) -> nn.Module:
    """Return a copy of ``model`` whose first (or every) ``nn.Conv2d`` is an equal CoordConv2d.

    The new layers keep the hyper-parameters, weights and bias of the convolutions
    they replace and start with zero coordinate weights, so the copy computes exactly
    what ``model`` does until it trains. Only layers of exact type ``nn.Conv2d`` are
    converted (not subclasses such as CoordConv2d), and only ungrouped ones:
    ``where="all"`` skips convolutions with ``groups > 1``. ``model`` is not modified.

    Args:
        model: any module, e.g. a torchvision ResNet or SB3's NatureCNN.
        where: "first" converts the first ungrouped Conv2d in ``named_modules()``
            order, "all" every ungrouped Conv2d.
        with_r: give the new layers the distance-from-centre channel too.
    """
    if where not in ("first", "all"):
        raise ValueError(f"coordconvify where must be 'first' or 'all', got {where!r}")
    model = copy.deepcopy(model)
    convs = [m for m in model.modules() if type(m) is nn.Conv2d]
    if not convs:
        raise ValueError(f"coordconvify found no nn.Conv2d in {type(model).__name__}")
    targets = [m for m in convs if m.groups == 1]
    if not targets:
        raise ValueError(
            f"coordconvify found only grouped nn.Conv2d layers (groups > 1) in "
            f"{type(model).__name__}; only groups=1 layers can be converted exactly"
        )
    if where == "first":
        targets = targets[:1]
    new = {id(conv): _to_coordconv(conv, with_r) for conv in targets}
    if id(model) in new:  # the model itself is a Conv2d
        return new[id(model)]
    # remove_duplicate=False: a layer registered under several names is replaced everywhere.
    for name, module in list(model.named_modules(remove_duplicate=False)):
        if id(module) in new:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, new[id(module)])
    return model


def _to_coordconv(conv: nn.Conv2d, with_r: bool) -> CoordConv2d:
    c = conv.in_channels
    new = CoordConv2d(
        c,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
        conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
        with_r=with_r,
    )
    with torch.no_grad():
        new.weight[:, :c].copy_(conv.weight)  # (out, c, kH, kW)
        new.weight[:, c:].zero_()  # (out, n_coords, kH, kW)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    new.weight.requires_grad_(conv.weight.requires_grad)
    if conv.bias is not None:
        new.bias.requires_grad_(conv.bias.requires_grad)
    new.train(conv.training)
    return new

"""Faster R-CNN on MNIST-scatter, conv against CoordConv (Liu et al. 2018, section 5).

The paper reports that CoordConv improved a Faster R-CNN's IoU on MNIST digits scattered on
a canvas by "about 24 percent". Here the whole detector is torchvision's `FasterRCNN` with
the official small backbone (`cc_bench.detection.models`); CoordConv goes at the backbone's
input, in the RPN head's 3x3 conv and its box regression (the paper's three places) and in the
box head's conv. Each epoch ends with the test
canvases scored by the official measure (the mean IoU of the RPN's proposals after NMS),
the final detections' mean IoU, precision and recall at IoU 0.5, detections per image, and
COCO mAP (`cc_bench.detection.metrics`).
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
from torch import Tensor, nn

from cc_bench.detection.configs import DetectionConfig
from cc_bench.detection.metrics import DetectionScores
from cc_bench.detection.models import faster_rcnn
from cc_bench.envs.mnist_scatter import MnistScatter, draw_canvases, make_mnist_scatter
from cc_bench.errors import check_batch_loss
from cc_bench.runtime import resolve_device, restore_rng_state, rng_state, seed_everything
from cc_bench.tracking import Tracker

LOSSES = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg")
"""The four losses torchvision's Faster R-CNN returns in training."""

SHOWN = 8
"""Canvases in each picture: training canvases at the start, test canvases at the end."""


def load_data(cfg: DetectionConfig, split: str) -> MnistScatter:
    """The training or test canvases the config asks for (generated once, then cached)."""
    return make_mnist_scatter(
        cfg.n_train if split == "train" else cfg.n_test,
        cfg.data_seed,
        source=cfg.source,
        canvas=cfg.canvas,
        crop=cfg.crop,
        n_digits=cfg.n_digits,
        min_size=cfg.min_size,
        max_size=cfg.max_size,
        binary=cfg.binary,
        split=split,
        data_root=cfg.data_root,
        download=cfg.download,
    )


def build_model(cfg: DetectionConfig, image_mean: float, image_std: float) -> nn.Module:
    """The Faster R-CNN with conv or CoordConv at each of its four places, as `cfg` says."""
    from cc_bench.layers import CoordConv2d

    def layer(place: str) -> Any:
        if cfg.conv_at(place) == "conv":
            return nn.Conv2d
        return (lambda *a, **k: CoordConv2d(*a, with_r=True, **k)) if cfg.with_r else CoordConv2d

    return faster_rcnn(
        num_classes=cfg.num_classes,
        image_size=cfg.crop,
        image_mean=image_mean,
        image_std=image_std,
        backbone_conv=layer("backbone_conv"),
        rpn_conv=layer("rpn_conv"),
        rpn_box_conv=layer("rpn_box_conv"),
        box_conv=layer("box_conv"),
        widths=cfg.widths,
        anchor_sizes=cfg.anchor_sizes,
        anchor_shapes=cfg.anchor_shapes,
        aspect_ratios=cfg.aspect_ratios,
        rpn_hidden=cfg.rpn_hidden,
        box_channels=cfg.box_channels,
        representation=cfg.representation,
        roi_sampling_ratio=cfg.roi_sampling_ratio,
        rpn_pre_nms_top_n_train=cfg.rpn_pre_nms_train,
        rpn_pre_nms_top_n_test=cfg.rpn_pre_nms_test,
        rpn_post_nms_top_n_train=cfg.rpn_post_nms_train,
        rpn_post_nms_top_n_test=cfg.rpn_post_nms_test,
        box_batch_size_per_image=cfg.box_batch_per_image,
    )


def targets_for(
    data: MnistScatter, idx: list[int], num_classes: int, device: torch.device
) -> list[dict[str, Tensor]]:
    """torchvision's targets: per image, boxes (k, 4) and labels (k,), 0 being the background."""
    out = []
    for k in idx:
        labels = data.labels[k] + 1 if num_classes == 10 else torch.ones_like(data.labels[k])
        out.append({"boxes": data.boxes[k].to(device), "labels": labels.to(device)})
    return out


def lr_factor(cfg: DetectionConfig, total_steps: int) -> Any:
    """Step -> learning-rate factor: linear warm-up from 1/1000, then x0.1 at each drop."""
    drops = [int(f * total_steps) for f in cfg.lr_drops]

    def factor(step: int) -> float:
        warm = 1.0
        if step < cfg.warmup_steps:
            alpha = step / cfg.warmup_steps
            warm = 0.001 * (1 - alpha) + alpha
        return warm * 0.1 ** sum(step >= d for d in drops)

    return factor


@torch.no_grad()
def evaluate(
    model: nn.Module, data: MnistScatter, cfg: DetectionConfig, device: torch.device
) -> tuple[dict[str, float], list[dict[str, Tensor]]]:
    """Scores on the whole test set, and the predictions for the first SHOWN canvases.

    The proposals `rpn_mean_iou` scores come from the same forward pass: the RPN's candidates
    filtered a second time as the official measure filters them (NMS at `rpn_iou_nms`, the
    top `rpn_iou_top` kept; `official_proposals`), in the transformed images' coordinates,
    and mapped back to the canvases' as torchvision maps the detections.
    """
    from torchvision.models.detection.transform import resize_boxes

    model.eval()
    scores = DetectionScores(cfg.score_threshold, cfg.rpn_iou_top)
    shown: list[dict[str, Tensor]] = []
    seen: dict[str, Any] = {}
    hooks = [model.transform.register_forward_hook(lambda m, i, out: seen.update(images=out[0]))]
    try:
        hooks.append(official_proposals(model.rpn, cfg.rpn_iou_nms, cfg.rpn_iou_top, seen))
        for start in range(0, len(data), cfg.eval_batch_size):
            idx = list(range(start, min(start + cfg.eval_batch_size, len(data))))
            images = [data.images[k].to(device) for k in idx]
            preds = model(images)
            proposals = [
                resize_boxes(box, size, image.shape[-2:])  # (M, 4) on the canvas
                for box, size, image in zip(
                    seen["proposals"], seen["images"].image_sizes, images, strict=True
                )
            ]
            scores.update(preds, targets_for(data, idx, cfg.num_classes, device), proposals)
            shown.extend({k: v.cpu() for k, v in p.items()} for p in preds[: SHOWN - len(shown)])
    finally:
        for hook in hooks:
            hook.remove()
    return scores.compute(), shown


class _Restore:
    """Undoes `official_proposals` (as a hook's handle is removed): the RPN's own
    `filter_proposals` again, or whatever the instance held before."""

    def __init__(self, rpn: nn.Module, before: Any) -> None:
        self.rpn, self.before = rpn, before

    def remove(self) -> None:
        if self.before is None:
            vars(self.rpn).pop("filter_proposals", None)
        else:
            vars(self.rpn)["filter_proposals"] = self.before


def official_proposals(rpn: nn.Module, nms: float, top: int, seen: dict[str, Any]) -> _Restore:
    """Make `rpn` (torchvision's `RegionProposalNetwork`, in eval mode) also put in
    `seen["proposals"]` its candidates filtered as the official measure filters them: NMS at
    `nms` and the `top` best kept, per image. Its own output (NMS at its `nms_thresh`, for the
    second stage) is unchanged, and so is `rpn`'s state: the second filter runs on a shallow
    copy set to the official values. `.remove()` on the result undoes it."""
    before = vars(rpn).get("filter_proposals")
    own = rpn.filter_proposals  # bound: an instance's own replacement, if it has one
    official = copy.copy(rpn)  # shares the submodules; its own NMS settings
    official.nms_thresh, official._post_nms_top_n = nms, {"training": top, "testing": top}

    def filter_proposals(*args: Any) -> tuple[list[Tensor], list[Tensor]]:
        seen["proposals"] = type(rpn).filter_proposals(official, *args)[0]
        return own(*args)

    rpn.filter_proposals = filter_proposals
    return _Restore(rpn, before)


def run(cfg: DetectionConfig, tracker: Tracker) -> dict[str, Any]:
    """Train the detector, scoring the test canvases every epoch; a picture; the final metrics."""
    device = resolve_device(cfg.device)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed)
    torch.set_flush_denormal(True)  # tiny gradients made CPU steps slower (as in toy/)
    train, test = load_data(cfg, "train"), load_data(cfg, "test")
    mean, std = float(train.images.mean()), float(train.images.std())
    model = build_model(cfg, mean, std).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
        )
    else:
        optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_batches = math.ceil(len(train) / cfg.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, cfg.epochs * n_batches))

    epoch, batch, order = 0, 0, None
    running: dict[str, float] = {}
    metrics: dict[str, float] = {}  # the last epoch's
    train_s, images_seen, timed_images = 0.0, 0, 0
    state = tracker.resume_state
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        restore_rng_state(state["rng"])
        epoch, batch, order = state["epoch"], state["batch"], state["order"]
        running, train_s, images_seen = state["running"], state["train_s"], state["images_seen"]
        timed_images = state.get("timed_images", images_seen)  # older checkpoints: all timed
        metrics = state["metrics"]

    def checkpoint() -> None:
        tracker.save_checkpoint(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "rng": rng_state(),
                "epoch": epoch,
                "batch": batch,
                "order": order,
                "running": running,
                "train_s": train_s,
                "images_seen": images_seen,
                "timed_images": timed_images,
                "metrics": metrics,
            },
            # In epochs, the unit of the logged steps: a resume keeps the lines logged up to
            # it and drops a later epoch's line logged just before a kill.
            step=epoch,
        )

    scores: dict[str, float] = {}
    shown: list[dict[str, Tensor]] = []
    desc = f"detection.mnist_scatter {cfg.conv}"
    if state is None:  # what the detector learns from: a few training canvases and their boxes
        figure = draw_canvases(
            train.images[:SHOWN],
            train.boxes[:SHOWN],
            train.labels[:SHOWN],
            title=f"MNIST-scatter ({cfg.source}): training canvases, true boxes and digits",
        )
        tracker.log_image("data/canvases", figure, step=0)
        _close(figure)
    bar = tracker.progress(cfg.epochs, desc=desc, initial=epoch)
    warm = False
    while epoch < cfg.epochs:
        if order is None:
            order = torch.randperm(len(train))
        model.train()
        while batch < n_batches:
            start = time.perf_counter()
            idx = order[batch * cfg.batch_size : (batch + 1) * cfg.batch_size].tolist()
            images = [train.images[k].to(device) for k in idx]  # B x (1, crop, crop)
            losses = model(images, targets_for(train, idx, cfg.num_classes, device))
            loss = sum(losses.values())
            value = float(loss.detach())
            check_batch_loss(value, epoch, batch, n_batches)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            images_seen += len(idx)
            if warm:  # this process's first step (CoordConv's autotune, allocations) is untimed
                train_s += time.perf_counter() - start
                timed_images += len(idx)
            warm = True
            for name, value in {"loss": loss, **losses}.items():
                running[name] = running.get(name, 0.0) + float(value.detach()) * len(idx)
            running["n"] = running.get("n", 0.0) + len(idx)
            batch += 1
            if tracker.checkpoint_due() and batch < n_batches:
                checkpoint()
        scores, shown = evaluate(model, test, cfg, device)
        epoch, batch, order = epoch + 1, 0, None
        seen = running.pop("n")
        metrics = {"train/loss": running.pop("loss") / seen}
        metrics.update({f"losses/{k}": v / seen for k, v in running.items()})
        metrics.update({f"test/{k}": v for k, v in scores.items()})
        metrics["perf/images_per_s"] = _rate(timed_images, train_s)
        metrics["train/images_seen"] = images_seen
        tracker.log(metrics, step=epoch)
        running = {}
        checkpoint()
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in scores.items()})
    bar.close()

    if not shown:  # resumed after the last epoch's checkpoint: score the final model again
        scores, shown = evaluate(model, test, cfg, device)
    keep = [p["scores"] >= cfg.score_threshold for p in shown]
    figure = draw_canvases(
        test.images[:SHOWN],
        test.boxes[:SHOWN],
        test.labels[:SHOWN] if cfg.num_classes == 10 else None,
        predicted=[p["boxes"][m] for p, m in zip(shown, keep, strict=True)],
        scores=[p["scores"][m] for p, m in zip(shown, keep, strict=True)],
        predicted_labels=(
            [p["labels"][m] - 1 for p, m in zip(shown, keep, strict=True)]
            if cfg.num_classes == 10
            else None
        ),
        title=(
            f"detection.mnist_scatter {cfg.conv} seed {cfg.seed}: truth (green) and "
            f"detections scoring >= {cfg.score_threshold} (red); mean IoU "
            f"{scores['mean_iou']:.3f}, mAP@0.5 {scores['map_50']:.3f}"
        ),
    )
    tracker.log_image("test/detections", figure, step=cfg.epochs)
    _close(figure)
    return {
        **scores,
        "train_loss": metrics.get("train/loss", float("nan")),
        "params": sum(p.numel() for p in model.parameters()),
        "wall_s": round(tracker.elapsed_s, 3),
        "images_per_s": _rate(timed_images, train_s),
    }


def _rate(images: int, seconds: float) -> float:
    """Training images per second; NaN when no step was timed (a run of a single step)."""
    return images / seconds if images else float("nan")


def _close(figure: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)

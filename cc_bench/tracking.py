"""Run tracking: the run folder, metrics, media, atomic checkpoints, and the W&B mirror.

A `Tracker` is the one sink every benchmark logs to. It writes the local files first
(`metrics.jsonl`, `media/`, `checkpoint.pt`, `summary.json`) and mirrors everything to a
W&B run: online when the user is logged in, offline otherwise, disabled with `--no-wandb`
or `WANDB_MODE=disabled`. A W&B failure never ends a run: it is reported once on standard
error and the local files carry on.
"""

from __future__ import annotations

import contextlib
import json
import math
import netrc
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cc_bench.errors import NonFiniteLossError, UserError
from cc_bench.rundir import read_json

CHECKPOINT_INTERVAL_S = 60.0
_WANDB_MODES = ("online", "offline", "disabled")


def wandb_mode(no_wandb: bool = False) -> str:
    """The W&B mode for a run: disabled, else WANDB_MODE if set, else online when logged in."""
    if no_wandb:
        return "disabled"
    env = os.environ.get("WANDB_MODE", "").lower()
    if env == "dryrun":
        return "offline"
    if env in _WANDB_MODES:
        return env
    return "online" if _wandb_logged_in() else "offline"


def _wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1]
    try:
        return netrc.netrc().authenticators(host.split("/")[0]) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    _write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _step_of(line: str) -> tuple[str, int | None]:
    """A `metrics.jsonl` line and its step; None for a blank line or one cut by a kill."""
    try:
        return line, int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return line, None


def _is_loss(name: str) -> bool:
    return "loss" in name.rsplit("/", 1)[-1]


class Tracker:
    """Logs one run to its folder and to W&B, and keeps its checkpoints.

    Args:
        run_dir: the run's folder (created by the caller, holding `config.json`).
        wandb_mode: "online", "offline" or "disabled".
        wandb_init: keyword arguments for `wandb.init` (project, group, name, config, tags, id).
        checkpoint_interval_s: `checkpoint_due()` turns true this long after the last checkpoint.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        wandb_mode: str = "disabled",
        wandb_init: Mapping[str, Any] | None = None,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.media_dir = self.run_dir / "media"
        self.checkpoint_path = self.run_dir / "checkpoint.pt"
        self.checkpoint_interval_s = checkpoint_interval_s
        self.resume_step: int | None = None
        self.checkpoint_step: int | None = None  # the step of the last checkpoint on disk
        self.resume_state: dict[str, Any] | None = None
        self._elapsed_before = 0.0
        self._start = time.monotonic()
        self._last_checkpoint = self._start
        self._metrics_path = self.run_dir / "metrics.jsonl"
        self._logged_step_path = self.run_dir / ".logged_step"
        self._metrics = None
        self._wandb = None
        # The last step an interrupted attempt logged: W&B has it, and a resumed attempt logs
        # again from its checkpoint; W&B only gets the steps after it, so its curves go on
        # from where they stopped instead of doubling back (metrics.jsonl is rewritten).
        self._wandb_sent_step: int | None = None
        if wandb_mode != "disabled":
            self._start_wandb(wandb_mode, dict(wandb_init or {}))

    # -- W&B -------------------------------------------------------------------------------

    def _start_wandb(self, mode: str, init: dict[str, Any]) -> None:
        try:
            import wandb

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run = wandb.init(
                    dir=str(self.run_dir),
                    mode=mode,
                    resume="allow",
                    settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
                    **init,
                )
            run.define_metric("step")
            run.define_metric("*", step_metric="step")
            self._wandb = run
        except Exception as exc:  # W&B must never end a run
            if mode != "online" or isinstance(exc, ImportError):
                self._wandb_failed("start", exc)
                return
            # Logged in but the server unreachable (a compute node without internet): keep
            # an offline record to `wandb sync` later rather than none.
            self._wandb_failed("start online", exc, "recording offline instead")
            with contextlib.suppress(Exception):
                wandb.teardown()  # the failed attempt still holds the run's id
            self._start_wandb("offline", init)

    def _wandb_failed(
        self,
        what: str,
        exc: BaseException,
        then: str = "the run goes on with local files only",
    ) -> None:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"warning: W&B failed to {what} ({first_line}); {then}", file=sys.stderr)
        run, self._wandb = self._wandb, None
        if run is not None:
            try:
                run.finish(exit_code=1, quiet=True)
            except Exception:
                pass

    def _wandb_call(self, what: str, fn: Callable[[Any], Any]) -> None:
        """Call `fn(wandb_run)` if W&B is live; a failure is reported once and W&B is dropped."""
        if self._wandb is None:
            return
        try:
            fn(self._wandb)
        except Exception as exc:
            self._wandb_failed(what, exc)

    @property
    def wandb_run(self) -> Any:
        """The live W&B run, or None when W&B is off or has failed."""
        return self._wandb

    def record_machine(self, **values: Any) -> None:
        """Record a choice this attempt made for this machine that the config left open (RL's
        `vec_env` under `auto`): into the attempt's entry of `config.json`'s `machines` and
        the W&B config (`machines`), beside the CPU and device the runner put there."""
        path = self.run_dir / "config.json"
        meta = read_json(path)
        if not isinstance(meta, dict) or not meta.get("machines"):
            return  # a Tracker used outside the runner: no config.json to add to
        meta["machines"][-1].update(values)
        write_json_atomic(path, meta)
        self._wandb_call(
            "record the machine",
            lambda run: run.config.update({"machines": meta["machines"]}, allow_val_change=True),
        )

    # -- time ------------------------------------------------------------------------------

    def start_clock(self) -> None:
        """Count this attempt's wall time from now (the time of earlier attempts is kept)."""
        self._start = self._last_checkpoint = time.monotonic()

    @property
    def elapsed_s(self) -> float:
        """Wall seconds this run has trained, over all its attempts (resumes included)."""
        return self._elapsed_before + time.monotonic() - self._start

    # -- metrics and media -----------------------------------------------------------------

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Log scalar metrics at `step`; a NaN or infinite loss raises NonFiniteLossError."""
        values = {k: float(v) for k, v in metrics.items()}
        if self._metrics is None:
            self._metrics = self._metrics_path.open("a")
        line = {"step": int(step), "time": time.time(), **values}
        self._metrics.write(json.dumps(line) + "\n")
        self._metrics.flush()
        for name, value in values.items():
            if _is_loss(name) and not math.isfinite(value):
                raise NonFiniteLossError(name, value, int(step))
        if self._new_to_wandb(step):
            self._wandb_call("log", lambda run: run.log({"step": int(step), **values}))

    def _new_to_wandb(self, step: int, media: bool = False) -> bool:
        """Whether W&B is live and has nothing at `step` from an interrupted attempt. Media
        at the interrupted attempt's last step are sent again: a kill may have come between
        that step's metrics and its pictures (a picture twice beats the final one missing)."""
        sent = self._wandb_sent_step
        return self._wandb is not None and (
            sent is None or int(step) > sent or (media and int(step) == sent)
        )

    def log_image(self, key: str, image: Any, step: int, caption: str | None = None) -> Path:
        """Save an image (a matplotlib figure, a PIL image or an HxW[xC] uint8 array) as PNG."""
        self.media_dir.mkdir(exist_ok=True)
        path = self.media_dir / f"{key.replace('/', '_')}_{int(step)}.png"
        if hasattr(image, "savefig"):
            image.savefig(path, dpi=100, bbox_inches="tight")
        else:
            from PIL import Image

            pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
            pil.save(path)
        if self._new_to_wandb(step, media=True):

            def log_image(run: Any) -> None:
                import wandb

                run.log({"step": int(step), key: wandb.Image(str(path), caption=caption)})

            self._wandb_call("log an image", log_image)
        return path

    def log_animation(self, key: str, path: Path, step: int, caption: str | None = None) -> Path:
        """Mirror an animation already written (a GIF in `media_dir`) to W&B as a video."""
        path = Path(path)
        if self._new_to_wandb(step, media=True):

            def log_video(run: Any) -> None:
                import wandb

                video = wandb.Video(str(path), caption=caption, format=path.suffix.lstrip("."))
                run.log({"step": int(step), key: video})

            self._wandb_call("log an animation", log_video)
        return path

    def progress(self, total: int, desc: str = "", initial: int = 0) -> Any:
        """A progress bar on standard error, shown only on a terminal."""
        from tqdm.auto import tqdm

        return tqdm(
            total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True, disable=None
        )

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint_due(self) -> bool:
        """Whether `checkpoint_interval_s` has passed since the last checkpoint."""
        return time.monotonic() - self._last_checkpoint >= self.checkpoint_interval_s

    def save_checkpoint(self, state: Mapping[str, Any], step: int) -> None:
        """Save `state` (anything torch.save takes) atomically: a temporary file, then a rename."""
        import torch

        payload = {"step": int(step), "elapsed_s": self.elapsed_s, "state": dict(state)}
        tuning = sys.modules.get("cc_bench.layer_tuning")
        if tuning is not None:  # the CoordConv strategies timed so far, for an exact resume
            payload["coordconv_strategies"] = tuning.autotune_choices()
        tmp = self.checkpoint_path.with_name(f".{self.checkpoint_path.name}.tmp")
        torch.save(payload, tmp)
        os.replace(tmp, self.checkpoint_path)
        self._last_checkpoint = time.monotonic()
        self.checkpoint_step = int(step)

    def restore(self) -> int | None:
        """Load the last checkpoint, if any, into `resume_state`; returns its step.

        Metrics logged after that step by the interrupted attempt are dropped from
        `metrics.jsonl`, since the run will log them again; W&B, which cannot drop them,
        gets only the steps after the last one the interrupted attempt logged.
        """
        import torch

        step = None
        if self.checkpoint_path.exists():
            try:
                payload = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
                step, state = int(payload["step"]), payload["state"]
            except Exception as exc:  # a damaged file: torch's and pickle's errors vary
                raise UserError(
                    f"cannot read the checkpoint {self.checkpoint_path} ({type(exc).__name__}); "
                    "--fresh starts the run over, keeping this folder aside"
                ) from None
            self.resume_step, self.resume_state = step, state
            self.checkpoint_step = step
            if payload.get("coordconv_strategies"):
                from cc_bench.layer_tuning import load_autotune_choices

                load_autotune_choices(payload["coordconv_strategies"])
            self._elapsed_before = float(payload["elapsed_s"])
            self._start = time.monotonic()
        if self._metrics_path.exists():
            logged = [_step_of(line) for line in self._metrics_path.read_text().splitlines()]
            # The last step any earlier attempt logged: this file's, or an attempt's before
            # it whose later lines an earlier restore dropped (kept in `.logged_step`).
            steps = [at for _, at in logged if at is not None]
            if self._logged_step_path.exists():
                steps.append(_step_of(self._logged_step_path.read_text())[1] or 0)
            last = max(steps, default=None)
            if last is not None and (step is None or last > step):
                self._wandb_sent_step = last
                write_json_atomic(self._logged_step_path, {"step": last})
            kept = [
                line for line, at in logged if step is not None and at is not None and at <= step
            ]
            # Through a temporary file: a kill mid-write must not leave the history empty.
            if self._metrics is not None:  # the next line logged opens the new file
                self._metrics.close()
                self._metrics = None
            _write_text_atomic(self._metrics_path, "".join(line + "\n" for line in kept))
        return step

    # -- the end ---------------------------------------------------------------------------

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Write `summary.json` and close the W&B run (failed runs exit W&B with code 1)."""
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        write_json_atomic(self.run_dir / "summary.json", dict(summary))
        if self._wandb is not None:
            metrics = summary.get("metrics") or {}
            code = 0 if summary["status"] == "finished" else 1
            self._wandb_call(
                "write its summary",
                lambda run: run.summary.update(
                    {
                        **metrics,
                        "status": summary["status"],
                        "error": summary.get("error"),
                        # W&B's summary also keeps every logged key's last value (an
                        # `epoch`): the report reads back only these (`wandb_record`).
                        "final_metrics": sorted(metrics),
                    }
                ),
            )
            self._wandb_call("finish", lambda run: run.finish(exit_code=code))
            self._wandb = None

    def close(self) -> None:
        """Release files and W&B without a summary (an interrupted run stays resumable)."""
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self._wandb is not None:
            self._wandb_call("finish", lambda run: run.finish(exit_code=1))
            self._wandb = None

"""`cc-bench launch --executor slurm` on a real one-node Slurm cluster (see slurm_cluster.py).

The cluster (slurmctld and slurmd on localhost) is installed if missing and started in a
temporary folder; if that cannot be done the tests are skipped with the reason. Without
slurmdbd there is no `sacct`, so the tests wait on the run folders (the truth), never on
submitit's job states.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, SlurmUnavailable, ensure_installed, missing_daemons

from cc_bench.launch import main_launch, main_status
from cc_bench.suites import Suite, SuiteEntry, register_suite

pytestmark = pytest.mark.slurm

BENCH = "toy.classification"
TINY = {"epochs": 2, "max_train_examples": 32, "widths": (4, 4)}
WAIT_S = 300

ARRAY_SUITE = register_suite(
    Suite(
        "test-slurm-array",
        "four tiny runs, packed two to a job",
        (SuiteEntry(BENCH, convs=("conv", "coordconv"), seeds=2, fixed=TINY),),
    )
)
# The deconv baseline at ~1 s an epoch: long enough to be interrupted mid-way.
LONG_SUITE = register_suite(
    Suite(
        "test-slurm-long",
        "one run to preempt",
        (
            SuiteEntry(
                BENCH, convs=("conv",), seeds=1, fixed={"epochs": 10, "max_train_examples": 32}
            ),
        ),
    )
)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A running one-node cluster; SLURM_CONF points the clients (sbatch, submitit) at it."""
    if os.environ.get("CC_BENCH_SLURM_INSTALL", "1") == "0" and missing_daemons():
        pytest.skip("Slurm is not installed and CC_BENCH_SLURM_INSTALL=0 forbids installing it")
    try:
        seconds = ensure_installed()
        if seconds:
            print(f"installed slurm-wlm and munge in {seconds:.0f} s")
        cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    except (SlurmUnavailable, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"no Slurm cluster could be started here: {exc}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(cluster.conf))
        mp.setenv("WANDB_MODE", "disabled")  # sbatch hands the environment to the jobs
        mp.setenv("OMP_NUM_THREADS", "1")
        yield cluster
    cluster.stop()


def submit(capsys: pytest.CaptureFixture[str], *args: str) -> list[tuple[str, list[str]]]:
    """`cc-bench launch ... --executor slurm`: the (job id, run ids) lines it printed."""
    assert main_launch([*args, "--executor", "slurm", "--time-min", "60"]) == 0
    out = capsys.readouterr().out
    assert "submitted" in out, out
    jobs = []
    for line in out.splitlines():
        if line.startswith("  ") and "_seed" in line:
            job_id, run_ids = line.split(maxsplit=1)
            jobs.append((job_id, run_ids.split(", ")))
    return jobs


def wait_for(
    predicate: Callable[[], bool], what: str, cluster: SlurmCluster, timeout: float = WAIT_S
) -> None:
    """Poll `predicate` until true; on timeout fail with the queue and the daemons' logs."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            queue = subprocess.run(["squeue"], capture_output=True, text=True, env=cluster.env)
            pytest.fail(f"{what} not within {timeout} s\n{queue.stdout}\n{cluster.log_tail()}")
        time.sleep(0.5)


def summaries(suite_dir: Path) -> dict[str, dict]:
    """Run id -> summary.json of every run of a suite that has one."""
    return {
        p.parent.name: json.loads(p.read_text()) for p in suite_dir.glob(f"{BENCH}/*/summary.json")
    }


def test_job_array_packs_runs_and_finishes(
    slurm: SlurmCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs_dir = tmp_path / "runs"
    jobs = submit(capsys, ARRAY_SUITE.name, "--runs-dir", str(runs_dir), "--runs-per-job", "2")
    assert [len(run_ids) for _, run_ids in jobs] == [2, 2]
    array_ids = {job_id.split("_")[0] for job_id, _ in jobs}
    assert len(array_ids) == 1, jobs  # one job array
    suite_dir = runs_dir / ARRAY_SUITE.name
    wait_for(lambda: len(summaries(suite_dir)) == 4, "4 summaries", slurm)
    done = summaries(suite_dir)
    assert {s["status"] for s in done.values()} == {"finished"}, done
    assert sorted(done) == sorted(r for _, run_ids in jobs for r in run_ids)
    assert main_status([str(runs_dir)]) == 0
    assert "4 runs: 4 done, 0 running, 0 failed, 0 unfinished" in capsys.readouterr().out
    # relaunching submits nothing: every run is finished
    assert main_launch([ARRAY_SUITE.name, "--runs-dir", str(runs_dir), "--executor", "slurm"]) == 0
    assert "nothing to submit" in capsys.readouterr().out


def test_preempted_job_is_requeued_and_resumes(
    slurm: SlurmCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs_dir = tmp_path / "runs"
    ((job_id, (run_id,)),) = submit(capsys, LONG_SUITE.name, "--runs-dir", str(runs_dir))
    run_dir = runs_dir / LONG_SUITE.name / BENCH / run_id
    metrics = run_dir / "metrics.jsonl"

    def logged() -> int:
        return len(metrics.read_text().splitlines()) if metrics.exists() else 0

    wait_for(lambda: logged() >= 2, "two epochs logged", slurm)
    assert main_status([str(runs_dir)]) == 0
    assert "1 run: 0 done, 1 running" in capsys.readouterr().out
    # what Slurm sends before a time limit (submitit asks for USR2): checkpoint and requeue
    signalled_at = time.time()
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, env=slurm.env)
    wait_for(lambda: (run_dir / "summary.json").exists(), "the requeued run's summary", slurm)

    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 11))  # no step logged twice
    log = next((runs_dir / LONG_SUITE.name / ".submitit").glob(f"{job_id}_0_log.err")).read_text()
    assert "requeuing" in log
    resumed = next(line for line in log.splitlines() if line.startswith("resuming"))
    step = int(resumed.rsplit(" ", 1)[1])
    assert step >= 2  # resumed from a checkpoint, not restarted from scratch
    # the two epochs logged before the signal are the first attempt's lines, kept (an epoch
    # may end between the signal and the checkpoint, so later lines may be after it)
    assert all(r["time"] < signalled_at for r in rows[:2])
    job = subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, env=slurm.env
    )
    assert "Restarts=1" in job.stdout

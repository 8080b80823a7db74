"""A real one-node Slurm cluster on this machine, for the Slurm tests (not a mock).

`ensure_installed()` installs Debian's `slurm-wlm` and `munge` when they are missing (as root,
through apt-get); `SlurmCluster(folder).start()` starts munged (if it is not running),
slurmctld and slurmd on localhost with a `slurm.conf`, state and logs all written into
`folder`, on free ports, and waits until `sinfo` shows the node idle; `stop()` ends the
daemons it started. Clients reach the cluster through `SLURM_CONF` (see `env`).

As a script: `python tests/slurm_cluster.py install` (what CI runs), or
`python tests/slurm_cluster.py up DIR` / `down DIR` to keep a cluster up by hand.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("slurmctld", "slurmd", "munged")
PACKAGES = ("slurm-wlm", "munge")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_SOCKET_DIR = Path("/run/munge")


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be installed or started here; the message says why."""


def _which_daemon(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


def missing_daemons() -> list[str]:
    """The Slurm and munge programs that are not installed."""
    return [d for d in DAEMONS if _which_daemon(d) is None]


def ensure_installed(quiet: bool = True) -> float:
    """Install slurm-wlm and munge with apt-get if a daemon is missing; returns the seconds spent.

    Raises SlurmUnavailable when they are missing and cannot be installed (not root, no apt-get,
    or the install fails).
    """
    if not missing_daemons():
        return 0.0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SlurmUnavailable(
            f"{', '.join(missing_daemons())} not installed, and installing needs root and apt-get"
            " (apt-get install slurm-wlm munge)"
        )
    start = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    out = subprocess.DEVNULL if quiet else None
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
    ):
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SlurmUnavailable(f"{' '.join(cmd)} failed: {tail}")
    if missing_daemons():
        raise SlurmUnavailable(f"still missing after apt-get: {', '.join(missing_daemons())}")
    return time.monotonic() - start


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _real_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return max(512, int(line.split()[1]) // 1024 - 512)
    return 1024


def _munge_works() -> bool:
    try:
        cred = subprocess.run(["munge", "-n"], capture_output=True, timeout=10, check=True).stdout
        subprocess.run(["unmunge"], input=cred, capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


class SlurmCluster:
    """slurmctld and slurmd on localhost, configured and logged under `folder`.

    Args:
        folder: where slurm.conf, the state, spool, pid and log files go.
        cpus: the node's CPUs (jobs of one CPU each run this many at a time).
    """

    def __init__(self, folder: Path, cpus: int = 2) -> None:
        self.folder = Path(folder)
        self.cpus = cpus
        self.conf = self.folder / "slurm.conf"
        self._munged_pid: int | None = None

    @property
    def env(self) -> dict[str, str]:
        """The environment a Slurm client (sbatch, squeue, submitit) needs to reach this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def write_conf(self) -> None:
        """Write slurm.conf for one node, `localhost`, in one partition, `debug`."""
        for sub in ("state", "spool", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        f = self.folder
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=ccbench",
                    "SlurmctldHost=localhost",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    # a requeued job waits this long before it may start again (default 120 s)
                    "AuthInfo=cred_expire=10",
                    "MpiDefault=none",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_CPU",
                    "SchedulerType=sched/backfill",
                    # look at the queue every 2 s, so a requeued job starts once it may
                    "SchedulerParameters=sched_interval=2,bf_interval=2",
                    "ReturnToService=2",
                    "JobRequeue=1",
                    "KillWait=5",
                    "MinJobAge=600",
                    "InactiveLimit=0",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    f"StateSaveLocation={f / 'state'}",
                    f"SlurmdSpoolDir={f / 'spool'}",
                    f"SlurmctldPidFile={f / 'slurmctld.pid'}",
                    f"SlurmdPidFile={f / 'slurmd.pid'}",
                    f"SlurmctldLogFile={f / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={f / 'log' / 'slurmd.log'}",
                    "SlurmctldDebug=info",
                    "SlurmdDebug=info",
                    f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus}"
                    f" RealMemory={_real_memory_mb()} State=UNKNOWN",
                    "PartitionName=debug Nodes=localhost Default=YES State=UP MaxTime=INFINITE",
                    "",
                ]
            )
        )

    def _start_munge(self) -> None:
        if _munge_works():
            return
        if not MUNGE_KEY.exists():
            subprocess.run(["mungekey", "--create", "--keyfile", str(MUNGE_KEY)], check=True)
            shutil.chown(MUNGE_KEY, "munge", "munge")
            MUNGE_KEY.chmod(0o400)
        MUNGE_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_SOCKET_DIR, "munge", "munge")
        pid_file = MUNGE_SOCKET_DIR / "munged.pid"
        subprocess.run(["runuser", "-u", "munge", "--", _which_daemon("munged")], check=True)
        if not _munge_works():
            raise SlurmUnavailable("munged started but `munge -n | unmunge` fails")
        if pid_file.exists():
            self._munged_pid = int(pid_file.read_text().split()[0])

    def _run_daemon(self, name: str, *args: str) -> None:
        done = subprocess.run(
            [_which_daemon(name), "-f", str(self.conf), *args],
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SlurmUnavailable(f"{name} did not start: {done.stderr.strip() or done.stdout}")

    def sinfo_state(self) -> str:
        """The node's state as `sinfo` reports it (idle, mix, alloc, down, ...), or ''."""
        done = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True, text=True
        )
        return done.stdout.strip()

    def start(self, timeout_s: float = 60.0) -> SlurmCluster:
        """Start munged (if needed), slurmctld and slurmd; wait until the node is idle."""
        self.write_conf()
        self._start_munge()
        self._run_daemon("slurmctld")
        self._run_daemon("slurmd", "-N", "localhost")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.sinfo_state().rstrip("*") == "idle":
                return self
            time.sleep(0.5)
        self.stop()
        raise SlurmUnavailable(
            f"the node is not idle after {timeout_s:.0f} s (sinfo: {self.sinfo_state()!r});"
            f" see the logs in {self.folder / 'log'}"
        )

    def stop(self) -> None:
        """Cancel the jobs left, stop the daemons this cluster started, munged last."""
        self._drain()
        for name in ("slurmd", "slurmctld"):
            _kill_pid_file(self.folder / f"{name}.pid")
        for pid in self._step_daemons():  # a step that outlived slurmd would wait forever
            _kill(pid, wait_s=2)
        if self._munged_pid is not None:
            _kill(self._munged_pid)
            self._munged_pid = None

    def _queue(self) -> list[str]:
        done = subprocess.run(
            ["squeue", "-h", "-o", "%i"], env=self.env, capture_output=True, text=True
        )
        return done.stdout.split() if done.returncode == 0 else []

    def _drain(self, timeout_s: float = 20.0) -> None:
        """Cancel every job and wait until the queue is empty (completing jobs included)."""
        jobs = self._queue()
        if jobs:
            subprocess.run(["scancel", *jobs], env=self.env, capture_output=True)
        deadline = time.monotonic() + timeout_s
        while self._queue() and time.monotonic() < deadline:
            time.sleep(0.5)

    def _step_daemons(self) -> list[int]:
        """The slurmstepd processes of this cluster: those with a file open in its folder."""
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                if not proc.name.isdigit() or b"slurmstepd" not in (proc / "cmdline").read_bytes():
                    continue
                targets = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
            except OSError:
                continue
            if any(t.startswith(f"{self.folder}/") for t in targets):
                pids.append(int(proc.name))
        return pids

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of both daemons' logs, to explain a failure."""
        text = []
        for name in ("slurmctld", "slurmd"):
            path = self.folder / "log" / f"{name}.log"
            if path.exists():
                text += [f"== {path}", *path.read_text().splitlines()[-lines:]]
        return "\n".join(text)


def _kill_pid_file(path: Path) -> None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    _kill(pid)


def _kill(pid: int, wait_s: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    """`install`, `up DIR` or `down DIR`."""
    if argv[:1] == ["install"]:
        if not missing_daemons():
            print("slurm-wlm and munge are installed")
            return 0
        seconds = ensure_installed(quiet=False)
        print(f"installed slurm-wlm and munge in {seconds:.1f} s")
        return 0
    if len(argv) == 2 and argv[0] in ("up", "down"):
        cluster = SlurmCluster(Path(argv[1]).resolve())
        if argv[0] == "up":
            ensure_installed()
            cluster.start()
            print(f"export SLURM_CONF={cluster.conf}")
        else:
            cluster.stop()
        return 0
    print("usage: slurm_cluster.py install | up DIR | down DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env bash
# CI: install a one-node Slurm's programs (Debian's slurm-wlm and munge) so that the Slurm
# tests (tests/test_slurm.py, marker `slurm`) run rather than skip. Idempotent: nothing is
# done when slurmctld, slurmd and munged are already there. Needs root and apt-get.
# The tests start and stop the cluster themselves (tests/slurm_cluster.py).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 tests/slurm_cluster.py install

"""`python -m cc_bench` is the `cc-bench` command."""

import sys

from cc_bench.cli import main

sys.exit(main())

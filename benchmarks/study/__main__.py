"""``python -m benchmarks.study``: the study's command line."""

import sys

from .cli import main

sys.exit(main())

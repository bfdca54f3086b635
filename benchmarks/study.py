"""``python benchmarks/study.py ...``: the reproduction study's command (the package ``benchmarks.study``).

The report, the docs and the leaderboard's notes name the study by this command, so it stays.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for `benchmarks.study`
    from benchmarks.study.cli import main

    sys.exit(main())

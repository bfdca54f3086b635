import sys

from hybrid_plugin.cli import main

sys.exit(main())

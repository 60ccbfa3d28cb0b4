"""``python -m llmstep``: the same command as the ``llmstep`` console script."""

import sys

from llmstep.cli.main import main

sys.exit(main())

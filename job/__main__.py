"""``python -m job`` is the ``detection-job`` command."""

import sys

from job.cli import main

sys.exit(main())

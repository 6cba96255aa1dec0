"""`python -m conformance.impact REPORT.json [--clients …] [--out DIR]` (also `conformance impact`)."""

from __future__ import annotations

import sys

from conformance.impact.command import main

if __name__ == "__main__":
    sys.exit(main())

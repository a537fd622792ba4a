#!/usr/bin/env python3
"""Pipeline step 'bulk_prepare' (flags: scdeal_bulk_prepare.py --help). Defined in scdeal.pipeline.steps.bulk_prepare."""
import sys

from scdeal.pipeline.steps.bulk_prepare import main

if __name__ == "__main__":
    sys.exit(main())

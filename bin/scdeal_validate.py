#!/usr/bin/env python3
"""Pipeline step 'validate' (flags: scdeal_validate.py --help). Defined in scdeal.pipeline.steps.validate."""
import sys

from scdeal.pipeline.steps.validate import main

if __name__ == "__main__":
    sys.exit(main())

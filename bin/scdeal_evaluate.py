#!/usr/bin/env python3
"""Pipeline step 'evaluate' (flags: scdeal_evaluate.py --help). Defined in scdeal.pipeline.steps.evaluate."""
import sys

from scdeal.pipeline.steps.evaluate import main

if __name__ == "__main__":
    sys.exit(main())

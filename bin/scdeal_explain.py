#!/usr/bin/env python3
"""Pipeline step 'explain' (flags: scdeal_explain.py --help). Defined in scdeal.pipeline.steps.explain."""
import sys

from scdeal.pipeline.steps.explain import main

if __name__ == "__main__":
    sys.exit(main())

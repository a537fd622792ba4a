#!/usr/bin/env python3
"""Pipeline step 'screen_prepare' (flags: scdeal_screen_prepare.py --help). Defined in scdeal.pipeline.steps.screen_prepare."""
import sys

from scdeal.pipeline.steps.screen_prepare import main

if __name__ == "__main__":
    sys.exit(main())

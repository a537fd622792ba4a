#!/usr/bin/env python3
"""Pipeline step 'screen' (flags: scdeal_screen.py --help). Defined in scdeal.pipeline.steps.screen."""
import sys

from scdeal.pipeline.steps.screen import main

if __name__ == "__main__":
    sys.exit(main())

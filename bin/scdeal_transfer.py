#!/usr/bin/env python3
"""Pipeline step 'transfer' (flags: scdeal_transfer.py --help). Defined in scdeal.pipeline.steps.transfer."""
import sys

from scdeal.pipeline.steps.transfer import main

if __name__ == "__main__":
    sys.exit(main())

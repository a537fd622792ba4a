#!/usr/bin/env python3
"""Pipeline step 'bulk_pretrain' (flags: scdeal_bulk_pretrain.py --help). Defined in scdeal.pipeline.steps.bulk_pretrain."""
import sys

from scdeal.pipeline.steps.bulk_pretrain import main

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Pipeline step 'screen_pretrain' (flags: scdeal_screen_pretrain.py --help). Defined in scdeal.pipeline.steps.screen_pretrain."""
import sys

from scdeal.pipeline.steps.screen_pretrain import main

if __name__ == "__main__":
    sys.exit(main())

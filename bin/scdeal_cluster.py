#!/usr/bin/env python3
"""Pipeline step 'cluster' (flags: scdeal_cluster.py --help). Defined in scdeal.pipeline.steps.cluster."""
import sys

from scdeal.pipeline.steps.cluster import main

if __name__ == "__main__":
    sys.exit(main())

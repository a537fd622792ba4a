#!/usr/bin/env python3
"""versions.yml of one pipeline process: `scdeal_versions.py "${task.process}" > versions.yml`.
The script and the stub of every module call it, so both name the process the same way."""
import sys

from scdeal.pipeline.provenance import versions_yaml

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: scdeal_versions.py PROCESS_NAME")
    sys.stdout.write(versions_yaml(sys.argv[1]))

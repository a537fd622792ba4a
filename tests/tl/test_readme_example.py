"""The README's Python example runs as written on the bundled test data, within a minute, and writes the keys
it documents."""
from __future__ import annotations

import re
import time

import pytest

from conftest import ROOT
from scdeal.data import keys


def readme_example() -> str:
    """The one Python block of the README's Python API section."""
    section = (ROOT / "README.md").read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_example_runs_and_writes_the_documented_keys(monkeypatch):
    monkeypatch.chdir(ROOT)
    namespace = {}
    started = time.time()
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    assert time.time() - started < 60
    cells = namespace["cells"]
    for key in (keys.PROB, keys.PROB_SD, keys.PROB_DIRECT, keys.PROB_BASELINE, keys.CALL, keys.TRUST):
        assert key in cells.obs, key
    assert keys.EMBEDDING in cells.obsm and {keys.TRANSFER, keys.EXPLAIN} <= set(cells.uns)
    assert set(cells.obs[keys.CALL]) <= {"sensitive", "resistant", "uncertain"}
    assert {"gene", "direction"} <= set(namespace["explanation"].signature.columns)

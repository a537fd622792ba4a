"""The Nextflow layer, checked without Nextflow: it parses, its includes resolve, every process calls an
existing bin/ script with flags that script accepts, and params agree across config, schema and docs."""
from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
from reftrace import ConfigFile, Module

from scdeal.io import response_paths
from scdeal.pipeline_config import config_params, schema_defaults, step_flags

ROOT = Path(__file__).resolve().parents[1]
NF_FILES = sorted(p for p in ROOT.rglob("*.nf") if not {".venv", "work", ".nf-test"} & set(p.relative_to(ROOT).parts))
MODULES = sorted((ROOT / "modules").rglob("main.nf"))
CONFIGS = [ROOT / "nextflow.config", *sorted((ROOT / "conf").glob("*.config"))]


def parse(path: Path):
    module = Module.from_file(str(path))
    assert type(module).__name__ == "Module", f"{path}: {module}"
    return module


def test_parser_detects_broken_code(tmp_path):
    bad = tmp_path / "bad.nf"
    bad.write_text("process X {\n  script:\n  \"\"\"\n  echo\n")
    assert type(Module.from_file(str(bad))).__name__ != "Module"


@pytest.mark.parametrize("path", NF_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nf_file_parses_and_includes_resolve(path):
    for include in parse(path).includes:
        target = include.from_module
        if target.startswith("plugin/"):
            continue
        resolved = (path.parent / target)
        assert resolved.with_suffix(".nf").exists() or (resolved / "main.nf").exists(), f"{path}: include {target}"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses(path):
    result = ConfigFile.from_file(str(path))
    assert not result.error, f"{path}: {result.error}"


def script_block(path: Path) -> str:
    text = path.read_text()
    return re.search(r"\n\s*script:\n(.*?)\n\s*stub:", text, re.S).group(1)


def bin_parser(script: str):
    step = re.fullmatch(r"scdeal_(\w+)\.py", script).group(1)
    return importlib.import_module(f"scdeal.steps.{step}").build_parser()


def accepted_flags(parser) -> set[str]:
    return {opt[2:] for action in parser._actions for opt in action.option_strings if opt.startswith("--")}


def required_flags(parser) -> set[str]:
    return {a.option_strings[0][2:] for a in parser._actions if a.required}


SCDEAL_MODULES = [m for m in MODULES if "scdeal" in m.parts]


@pytest.mark.parametrize("path", SCDEAL_MODULES, ids=lambda p: p.parent.name)
def test_module_calls_existing_bin_script_with_accepted_flags(path):
    process = parse(path).processes[0]
    script = script_block(path)
    called = re.findall(r"(scdeal_\w+\.py)", script)
    assert len(called) == 1, f"{path}: expected one bin/ call, found {called}"
    assert (ROOT / "bin" / called[0]).exists()
    parser = bin_parser(called[0])
    used = set(re.findall(r"--(\w+)", script)) | {flag for flag, _, _ in step_flags(ROOT).get(process.name, [])}
    if "cosmic" in script:
        used.add("cosmic_map")
    assert used <= accepted_flags(parser), f"{path}: flags not accepted: {used - accepted_flags(parser)}"
    assert required_flags(parser) <= used, f"{path}: required flags missing: {required_flags(parser) - used}"


def test_local_runner_passes_the_same_flags_as_the_modules(tmp_path):
    from scdeal.runner import PROCESS, build_tasks
    from scdeal.samplesheet import Row
    params = schema_defaults(ROOT) | {"bulk_expression": "e.csv", "bulk_response": "r.csv"}
    rows = [Row("s1", tmp_path / "s1.h5ad", "Erlotinib", "human", "response")]
    for task in build_tasks(rows, params, tmp_path, ROOT):
        module = ROOT / "modules" / "local" / "scdeal" / task.step / "main.nf"
        module_flags = set(re.findall(r"--(\w+)", script_block(module))) - {"outdir", "threads", "versions"}
        module_flags |= {flag for flag, _, _ in step_flags(ROOT)[PROCESS[task.step]]}
        runner_flags = {a[2:] for a in task.args if a.startswith("--")}
        assert runner_flags <= module_flags | {"cosmic_map"}, task.name
        assert module_flags - {"cosmic"} <= runner_flags | {"cosmic_map"}, task.name


def test_gpu_steps_carry_the_gpu_label():
    labels = {parse(p).processes[0].name: [lab.value for lab in parse(p).processes[0].labels] for p in MODULES}
    assert labels["SCDEAL_TRANSFER"] == ["process_gpu"] and labels["SCDEAL_EXPLAIN"] == ["process_gpu"]
    base = (ROOT / "conf" / "base.config").read_text()
    gpu_block = base[base.index("withLabel:process_gpu"):]
    assert "accelerator" in gpu_block and "workflow.profile.contains('gpu')" in gpu_block
    for label in ("process_single", "process_low", "process_medium", "process_high"):
        assert f"withLabel:{label}" in base
    assert "130..145" in base and "104" in base


def used_params() -> set[str]:
    names = set()
    for path in NF_FILES:
        names |= {p.name for p in parse(path).params}
    for path in CONFIGS:
        names |= set(re.findall(r"params\.(\w+)", path.read_text()))
    return names


def test_every_param_used_is_declared_and_documented():
    declared = set(config_params((ROOT / "nextflow.config").read_text(), ROOT))
    schema = set(schema_defaults(ROOT))
    usage = (ROOT / "docs" / "usage.md").read_text()
    for name in used_params():
        assert name in declared, f"params.{name} is used but not declared in nextflow.config"
        assert name in schema, f"params.{name} is not in nextflow_schema.json"
    hidden = {k for g in json.loads((ROOT / "nextflow_schema.json").read_text())["$defs"].values()
              for k, v in g["properties"].items() if v.get("hidden")}
    for name in schema - hidden:
        assert f"`--{name}`" in usage, f"--{name} is not documented in docs/usage.md"


def test_schema_defaults_equal_config_defaults():
    config = config_params((ROOT / "nextflow.config").read_text(), ROOT)
    schema = schema_defaults(ROOT)
    assert set(config) == set(schema)
    for name, default in schema.items():
        assert config[name] == default, f"{name}: nextflow.config {config[name]!r} vs schema {default!r}"


def test_schema_params_have_types_and_help():
    schema = json.loads((ROOT / "nextflow_schema.json").read_text())
    for group in schema["$defs"].values():
        for name, spec in group["properties"].items():
            assert spec.get("type") and spec.get("description"), name


def test_step_defaults_equal_schema_defaults():
    """A step run by hand behaves as the pipeline does by default."""
    schema = schema_defaults(ROOT)
    for process, flags in step_flags(ROOT).items():
        if not process.startswith("SCDEAL_"):
            continue
        parser = bin_parser(f"scdeal_{process.removeprefix('SCDEAL_').lower()}.py")
        defaults = {a.dest: a.default for a in parser._actions}
        for flag, param, _ in flags:
            if flag != "device":
                assert defaults[flag] == schema[param], f"{process} --{flag}: {defaults[flag]!r} vs {schema[param]!r}"


def test_profiles_exist():
    config = (ROOT / "nextflow.config").read_text()
    for profile in ("test", "test_full", "docker", "singularity", "apptainer", "conda", "gpu", "debug"):
        assert re.search(rf"^\s*{profile}\s*\{{", config, re.M), profile


def test_test_profile_files_exist():
    params = config_params((ROOT / "conf" / "test.config").read_text(), ROOT)
    for key in ("input", "bulk_expression", "bulk_response"):
        for path in response_paths(params[key]):  # bulk_response may list several tables
            assert Path(path).exists(), (key, path)
    assert len(response_paths(params["bulk_response"])) == 2

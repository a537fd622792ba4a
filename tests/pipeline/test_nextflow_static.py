"""The Nextflow layer, checked without Nextflow (nothing here can run it): it parses, its includes resolve,
every process calls an existing bin/ script with flags that script accepts, params agree across config,
schema and docs, and each kind of mistake that only a real run would otherwise reveal fails a test here:
container names Nextflow would rewrite, failures that stop other samples, outputs written where an input
is staged, GPU flags without a GPU, meta fields that rerun tasks on -resume, version keys, the nf-test
snapshot."""
from __future__ import annotations

import importlib
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from reftrace import ConfigFile, Module

from conftest import ROOT
from scdeal.data.bulk import BulkPrepareConfig
from scdeal.data.readers import normalise_name, response_paths
from scdeal.model.training import BulkConfig
from scdeal.model.transfer import TransferConfig
from scdeal.pipeline.config import (
    config_params,
    schema_defaults,
    schema_parameters,
)
from scdeal.pipeline.provenance import versions_yaml
from scdeal.pipeline.samplesheet import SCREEN_DRUG_KEY
from scdeal.pipeline.settings import step_flags
from scdeal.pipeline.steps.common import step_parser
from scdeal.tl.screen import ScreenConfig

NF_FILES = sorted(p for p in ROOT.rglob("*.nf") if not {".venv", "work", ".nf-test"} & set(p.relative_to(ROOT).parts))
MODULES = sorted((ROOT / "modules").rglob("main.nf"))
SCDEAL_MODULES = [m for m in MODULES if "scdeal" in m.parts]
CONFIGS = [ROOT / "nextflow.config", *sorted((ROOT / "conf").glob("*.config"))]
WORKFLOW = ROOT / "workflows" / "scdeal.nf"
UTILS = ROOT / "subworkflows" / "local" / "utils_nfcore_scdeal_pipeline" / "main.nf"
USAGE = (ROOT / "docs" / "usage.md").read_text()


def parse(path: Path):
    module = Module.from_file(str(path))
    assert type(module).__name__ == "Module", f"{path}: {module}"
    return module


def process_name(path: Path) -> str:
    return parse(path).processes[0].name


def block(path: Path, name: str) -> str:
    """The text of one section of a process (`input:`, `output:`, `script:`, `stub:`)."""
    sections = "input|output|when|script|stub"
    match = re.search(rf"\n\s*{name}:\n(.*?)(?=\n\s*(?:{sections}):\n|\n}}\s*$)", path.read_text(), re.S)
    assert match, f"{path}: no {name}: block"
    return match.group(1)


def config_text() -> str:
    return "\n".join(path.read_text() for path in CONFIGS)


def manifest_version() -> str:
    return re.search(r"version\s*=\s*'([^']+)'", (ROOT / "nextflow.config").read_text().split("manifest {")[1]).group(1)


def package_version() -> str:
    return re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def test_manifest_version_is_the_package_version_with_dev_on_main():
    """main carries the next release with a `dev` suffix (images and runs of main are never taken for a
    release); a release sets both to the same version (.github/workflows/branch.yml checks pull requests)."""
    import scdeal
    assert scdeal.__version__ == package_version()
    assert manifest_version() in (f"{package_version()}dev", package_version())
    branch = (ROOT / ".github" / "workflows" / "branch.yml").read_text()
    assert '"${package}dev"' in branch and "release-${package}" in branch


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


# ------------------------------------------------------------------ bin/ scripts and their flags

# The screen steps' flags as agreed for issue 14 (configurations, --device, own inputs: required or not). Their
# modules are written beside this wiring; until they are on the branch, the checks below use a parser built
# from this agreement, and test_screen_steps_keep_the_agreed_flags compares the two once they are.
SCREEN_CONTRACT = {
    "screen_prepare": ((BulkPrepareConfig,), False,
                       {"bulk_expression": True, "bulk_response": True, "cosmic_map": False, "drugs": False}),
    "screen_pretrain": ((BulkConfig,), True, {"bulk": True}),
    # the pretrained model is read with --member_init pretrained only; else each member fits its own (--bulk_*)
    "screen": ((TransferConfig, ScreenConfig, (BulkConfig, "bulk_")), True,
               {"cells": True, "bulk": True, "model": False, "sample": True}),
}


def step_present(step: str) -> bool:
    return importlib.util.find_spec(f"scdeal.pipeline.steps.{step}") is not None


def contract_parser(step: str):
    configs, device, inputs = SCREEN_CONTRACT[step]
    parser = step_parser(f"scdeal_{step}.py", "agreed flags", *configs, device=device)
    for name, required in inputs.items():
        parser.add_argument(f"--{name}", required=required, nargs="+" if name == "bulk_response" else None)
    return parser


def bin_parser(script: str):
    step = re.fullmatch(r"scdeal_(\w+)\.py", script).group(1)
    if step in SCREEN_CONTRACT and not step_present(step):
        return contract_parser(step)
    return importlib.import_module(f"scdeal.pipeline.steps.{step}").build_parser()


@pytest.mark.parametrize("step", SCREEN_CONTRACT)
def test_screen_steps_keep_the_agreed_flags(step):
    if not step_present(step):
        pytest.skip(f"scdeal.pipeline.steps.{step} is not on this branch yet: the modules, runner and config are "
                    "checked against the agreed flags (SCREEN_CONTRACT) instead")
    real = importlib.import_module(f"scdeal.pipeline.steps.{step}").build_parser()
    agreed = contract_parser(step)
    assert accepted_flags(real) == accepted_flags(agreed), step
    assert required_flags(real) == required_flags(agreed), step
    assert step == importlib.import_module(f"scdeal.pipeline.steps.{step}").NAME


def accepted_flags(parser) -> set[str]:
    return {opt[2:] for action in parser._actions for opt in action.option_strings if opt.startswith("--")}


def required_flags(parser) -> set[str]:
    return {a.option_strings[0][2:] for a in parser._actions if a.required}


def step_call(path: Path) -> str:
    """The step's command in the script block (the versions.yml line aside)."""
    return block(path, "script").split("scdeal_versions.py")[0]


@pytest.mark.parametrize("path", SCDEAL_MODULES, ids=lambda p: p.parent.name)
def test_module_calls_existing_bin_script_with_accepted_flags(path):
    script = step_call(path)
    called = re.findall(r"(scdeal_\w+\.py)", script)
    assert len(called) == 1, f"{path}: expected one bin/ call, found {called}"
    assert (ROOT / "bin" / called[0]).exists()
    parser = bin_parser(called[0])
    used = set(re.findall(r"--(\w+)", script)) | {flag for flag, _ in step_flags().get(process_name(path), [])}
    if "cosmic" in script:
        used.add("cosmic_map")
    assert used <= accepted_flags(parser), f"{path}: flags not accepted: {used - accepted_flags(parser)}"
    assert required_flags(parser) <= used, f"{path}: required flags missing: {required_flags(parser) - used}"


@pytest.mark.parametrize("path", SCDEAL_MODULES, ids=lambda p: p.parent.name)
def test_module_gives_the_step_its_cpus(path):
    """Thread pools follow --threads (scdeal.pipeline.steps.common.limit_threads): it must be the task's cpus."""
    assert "--threads ${task.cpus}" in step_call(path)


@pytest.mark.parametrize("member_init", ["independent", "pretrained"])
def test_local_runner_passes_the_same_flags_as_the_modules(tmp_path, member_init):
    from scdeal.pipeline.runner import PROCESS, build_tasks
    from scdeal.pipeline.samplesheet import Row
    params = schema_defaults(ROOT) | {"bulk_expression": "e.csv", "bulk_response": "r.csv", "drugs": "panel.txt",
                                      "member_init": member_init}
    rows = [Row("s1", tmp_path / "s1.h5ad", "Erlotinib", "human", "response"),
            Row("s1", tmp_path / "s1.h5ad", "all", "human", None)]
    tasks = build_tasks(rows, params, outdir=tmp_path)
    # the bulk model is pretrained only where the transfer reads its weights, as in workflows/scdeal.nf
    unused = set() if member_init == "pretrained" else {"SCDEAL_BULK_PRETRAIN", "SCDEAL_SCREEN_PRETRAIN"}
    assert {PROCESS[task.step] for task in tasks} == {process_name(p) for p in SCDEAL_MODULES} - unused
    optional = {"cosmic", "cosmic_map"} | ({"model"} if member_init == "independent" else set())
    # the local runner validates in its preflight, in process (check_sample, as scdeal_validate.py does)
    for task in (t for t in tasks if t.step != "validate"):
        module = ROOT / "modules" / "local" / "scdeal" / task.step / "main.nf"
        module_flags = set(re.findall(r"--(\w+)", step_call(module))) - {"outdir", "threads"}
        module_flags |= {flag for flag, _ in step_flags()[PROCESS[task.step]]}
        runner_flags = {a[2:] for a in task.args if a.startswith("--")}
        assert runner_flags <= module_flags | {"cosmic_map"}, task.name
        assert module_flags - optional <= runner_flags, task.name


@pytest.mark.parametrize(("pretrain", "consumer", "empty"), [("SCDEAL_BULK_PRETRAIN", "transfer", "[ meta.id, bulk, [] ]"),
                                                            ("SCDEAL_SCREEN_PRETRAIN", "screen", "[ bulk, [] ]")])
def test_workflow_pretrains_bulk_models_only_for_member_init_pretrained(pretrain, consumer, empty):
    """The transfer and the screen read pretrained weights only with --member_init pretrained: the workflow runs
    their pretraining under that condition alone and gives them an empty model otherwise."""
    workflow = (ROOT / "workflows" / "scdeal.nf").read_text()
    guarded = [m for m in re.finditer(r"if \(params\.member_init == 'pretrained'\) \{(.*?)\n    \}\n    else \{(.*?)\n    \}",
                                      workflow, re.S) if f"{pretrain} (" in m.group(1)]
    assert guarded, f"{pretrain} is not under `if (params.member_init == 'pretrained')`"
    assert workflow.count(f"{pretrain} (") == 1 and empty in guarded[0].group(2)
    module = (ROOT / "modules" / "local" / "scdeal" / consumer / "main.nf").read_text()
    assert 'model ? "--model ${model}" : \'\'' in module and "--model ${model} \\\\" not in module


def test_local_runner_arguments_parse_with_the_steps_parsers(tmp_path):
    """Every task's flags, with the schema's default values, are accepted by its step (types and choices)."""
    from scdeal.pipeline.runner import build_tasks
    from scdeal.pipeline.samplesheet import Row
    params = schema_defaults(ROOT) | {"bulk_expression": "e.csv", "bulk_response": "r1.csv,r2.csv",
                                      "cosmic_map": "c.csv", "drugs": "panel.txt"}
    rows = [Row("s1", tmp_path / "s1.h5ad", "Erlotinib", "human", "response"),
            Row("s1", tmp_path / "s1.h5ad", "all", "human", None)]
    for task in build_tasks(rows, params, outdir=tmp_path):
        if task.step != "validate":  # run in the preflight, not as a step
            bin_parser(f"scdeal_{task.step}.py").parse_args([*task.args, "--outdir", "o"])


# ------------------------------------------------------------------ containers

def is_absolute_docker_name(image: str) -> bool:
    """Nextflow's ContainerHandler.isAbsoluteDockerName: only a name whose first component is a registry
    host (holds '.' or ':') escapes the `docker.registry` prefix (quay.io) and its singularity twin."""
    head, slash, _ = image.partition("/")
    return bool(slash) and ("." in head or ":" in head)


def test_registry_rule_matches_nextflow():
    assert not is_absolute_docker_name("scdeal/scdeal:0.1.0")  # becomes quay.io/scdeal/scdeal:0.1.0
    assert not is_absolute_docker_name("ubuntu")
    assert is_absolute_docker_name("ghcr.io/scdeal/scdeal:0.1.0")
    assert is_absolute_docker_name("localhost:5000/scdeal:0.1.0")


def container_definitions() -> list[tuple[str, str]]:
    """(where, expression) of every container a process can get: module directives and config settings."""
    found = [(str(p.relative_to(ROOT)), m) for p in MODULES for m in re.findall(r"^\s*container\s+(.+)$", p.read_text(), re.M)]
    for path in CONFIGS:
        found += [(path.name, m) for m in re.findall(r"^\s*(?:process\.)?container\s*=\s*(.+)$", path.read_text(), re.M)]
    return found


def image_names(expression: str) -> set[str]:
    """The names a container expression yields: each branch of a ternary on task.ext.use_gpu, the
    pipeline version filled in."""
    text = expression.strip().strip("{} ").strip('"\'')
    text = text.replace("${params.container_tag ?: workflow.manifest.version}", manifest_version())
    ternary = re.search(r"\$\{\s*task\.ext\.use_gpu\s*\?\s*'([^']*)'\s*:\s*'([^']*)'\s*\}", text)
    if ternary:
        return {text.replace(ternary.group(0), branch) for branch in ternary.groups()}
    return {text}


def pipeline_images() -> set[str]:
    return set().union(*(image_names(expression) for _, expression in container_definitions()))


def test_every_container_name_is_used_as_written():
    definitions = container_definitions()
    assert definitions, "no container is set for the processes"
    for where, expression in definitions:
        for name in image_names(expression):
            assert "$" not in name, f"{where}: unresolved container expression {expression}"
            assert is_absolute_docker_name(name), f"{where}: Nextflow would prefix '{name}' with docker.registry"
    assert len(pipeline_images()) == 2, "one CPU and one CUDA image"


def test_modules_take_the_one_image_set_in_the_config():
    for path in MODULES:
        assert not re.search(r"^\s*container\s", path.read_text(), re.M), f"{path}: sets its own container"
        assert 'conda "${moduleDir}/environment.yml"' in path.read_text(), path
    assert len(container_definitions()) == 1


def test_documented_and_built_images_are_the_pipeline_images():
    dockerfile = (ROOT / "Dockerfile").read_text()
    built = set(re.findall(r"docker build .*-t (\S+) \.", dockerfile))
    assert {name.rsplit(":", 1)[0] for name in built} == {name.rsplit(":", 1)[0] for name in pipeline_images()}
    for name in pipeline_images():
        assert name.rsplit(":", 1)[0] in USAGE, f"docs/usage.md does not name {name}"



def test_ci_builds_both_images_and_runs_nf_test_with_docker():
    """Both images, tagged with the pipeline version and the commit; pushed from main and on release; the
    version read from `nextflow config`, which fails the job when the config does not parse."""
    workflows = ROOT / ".github" / "workflows"
    text = (workflows / "build-images.yml").read_text()
    build = yaml.safe_load(text)["jobs"]["build"]
    step = next(s for s in build["steps"] if s.get("uses", "").startswith("docker/build-push-action"))
    assert step["with"]["tags"] == "${{ steps.tags.outputs.tags }}"
    tags = next(s for s in build["steps"] if s.get("id") == "tags")["run"]
    assert 'image="ghcr.io/scdeal/${{ matrix.image }}"' in tags
    assert 'tags=${image}:${version},${image}:sha-${GITHUB_SHA::7}' in tags
    built = {f"ghcr.io/scdeal/{entry['image']}:{manifest_version()}": entry["torch_variant"]
             for entry in build["strategy"]["matrix"]["include"]}
    assert set(built) == pipeline_images()
    assert {name for name, variant in built.items() if variant != "cpu"} == {n for n in pipeline_images() if "-cuda" in n}
    assert "TORCH_VARIANT=${{ matrix.torch_variant }}" in step["with"]["build-args"]
    push = build["env"]["PUSH"]
    assert "github.event_name == 'release'" in push and "(github.event_name == 'push' && github.ref == 'refs/heads/main')" in push
    nf_test = (workflows / "nf-test.yml").read_text()
    for workflow in (tags, nf_test):
        assert "nextflow config -flat ." in workflow and 'if [ -z "$version" ]' in workflow and "set -euo pipefail" in workflow
    assert "nf-test test --profile=+docker" in nf_test  # nf-test.config's profile "test", plus docker
    assert re.search(r'profile\s+"test"', (ROOT / "nf-test.config").read_text())
    cpu = next(name for name in pipeline_images() if "-cuda" not in name)
    assert f'docker build -t "{cpu.replace(manifest_version(), "${version}")}" .' in nf_test


def test_container_tag_selects_another_build_and_is_documented():
    """--container_tag replaces the version in both images' tag (a commit's sha-<commit>, a local build)."""
    expression = next(e for _, e in container_definitions())
    assert "${params.container_tag ?: workflow.manifest.version}" in expression
    section = USAGE[USAGE.index("### Containers"):USAGE.index("### What happens when a task fails")]
    assert "docker build -t ghcr.io/scdeal/scdeal:local ." in section and "--container_tag local" in section
    assert "--container_tag sha-" in section
    pattern = schema_parameters(ROOT)["container_tag"]["pattern"]
    for tag in ("local", "sha-1a2b3c4", "0.1.0dev"):
        assert re.match(pattern, tag), tag
    assert not re.match(pattern, "a b") and not re.match(pattern, "-x")


def test_images_import_every_step_and_carry_their_source():
    """The build imports every module of scdeal.pipeline.steps.STEPS (a new step cannot be missed) and labels
    the image with its repository, as OCI registries expect."""
    from scdeal.pipeline.steps import STEPS
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "from scdeal.pipeline.steps import STEPS" in dockerfile and "for step in STEPS" in dockerfile
    assert {f"scdeal_{step}.py" for step in STEPS} <= {p.name for p in (ROOT / "bin").glob("scdeal_*.py")}
    assert 'org.opencontainers.image.source="https://github.com/scdeal/scdeal"' in dockerfile
    assert "org.opencontainers.image.licenses" in dockerfile and "org.opencontainers.image.description" in dockerfile


def test_images_pin_their_base_and_set_writable_caches():
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.M).group(1)
    assert re.search(r":\d+\.\d+\.\d+", base), f"base image {base} is not pinned to a release"
    assert "environment.yml" in dockerfile
    for variable in ("NUMBA_CACHE_DIR", "MPLCONFIGDIR"):
        assert re.search(rf"{variable}=/tmp/", dockerfile), variable
        assert re.search(rf"^\s*{variable}\s*=\s*'\.", (ROOT / "nextflow.config").read_text(), re.M), \
            f"{variable} is not a task-local folder in nextflow.config env"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[0].startswith("#") and "*" in ignored, ".dockerignore sends only what the image needs"
    copied = set(re.findall(r"^COPY (?:--\S+ )*(.+?) \S+$", dockerfile, re.M))
    for item in " ".join(copied).split():
        assert f"!{item.rstrip('/')}" in ignored or f"!{item.rstrip('/')}/" in ignored, f".dockerignore excludes {item}"


def test_environment_is_pinned_and_satisfies_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge", "bioconda"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert all(re.search(r"=\d", d) for d in conda), f"unpinned conda packages: {conda}"
    pip = [d for d in next(d["pip"] for d in env["dependencies"] if isinstance(d, dict)) if not d.startswith("-")]
    pins = {Requirement(d).name.lower().replace("_", "-"): Requirement(d) for d in pip}
    own = pins.pop("scdeal")
    assert all(str(r.specifier).startswith("==") for r in pins.values()), "every pip package pinned with =="
    pyproject = re.search(r"dependencies = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.S).group(1)
    for line in re.findall(r'"([^"]+)"', pyproject):
        need = Requirement(line)
        pin = pins.get(need.name.lower().replace("_", "-"))
        assert pin, f"{need.name} is not pinned in environment.yml"
        version = str(pin.specifier).removeprefix("==")
        assert need.specifier.contains(version, prereleases=True), f"{need.name}=={version} breaks pyproject's {need}"
    # the pipeline's own package, at this version's release tag: a cached environment holds that release
    assert own.url == f"git+https://github.com/scdeal/scdeal.git@{package_version()}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.parent.name)
def test_module_has_meta_yml_and_the_pinned_environment(path):
    env = path.parent / "environment.yml"
    assert env.resolve() == (ROOT / "environment.yml").resolve(), f"{env} is not the pipeline's environment"
    meta = yaml.safe_load((path.parent / "meta.yml").read_text())
    emits = set(re.findall(r"emit:\s*(\w+)", block(path, "output")))
    assert set(meta["output"]) == emits, f"{path.parent.name}/meta.yml outputs {set(meta['output'])} vs {emits}"
    inputs = re.findall(r"(?:val|path)\(?\s*(\w+)", block(path, "input"))
    documented = [name for group in meta["input"] for item in group for name in item]
    assert documented == inputs, f"{path.parent.name}/meta.yml inputs {documented} vs {inputs}"


def test_conda_profiles_install_the_pinned_package_with_channels():
    """-profile conda/mamba create environment.yml, scdeal included (no code from the checkout through
    PYTHONPATH, which a cloud worker does not have); channels set; the GPU steps get the CUDA twin."""
    config = (ROOT / "nextflow.config").read_text()
    assert "PYTHONPATH" not in config_text()
    for profile in ("conda", "mamba"):
        body = re.search(rf"^\s*{profile}\s*\{{(.*?)^\s*\}}", config, re.M | re.S).group(1)
        assert "conda.enabled           = true" in body and "conda.channels          = ['conda-forge', 'bioconda']" in body
    cpu = (ROOT / "environment.yml").read_text()
    cuda = (ROOT / "assets" / "environment_cuda.yml").read_text()
    def body(text: str) -> list[str]:
        return [line for line in text[text.index("\nname:"):].splitlines() if not line.strip().startswith("#")]

    differ = [(a, b) for a, b in zip(body(cpu), body(cuda), strict=True) if a != b]
    assert differ == [("name: scdeal", "name: scdeal-cuda"),
                      ("      - --extra-index-url https://download.pytorch.org/whl/cpu",
                       "      - --extra-index-url https://download.pytorch.org/whl/cu128")]
    gpu = re.search(r"^\s*gpu\s*\{(.*?)^    \}", config, re.M | re.S).group(1)
    assert 'conda            = "${projectDir}/assets/environment_cuda.yml"' in gpu
    # the images install the build's own source, not the release tag
    assert '-e "/^ *- scdeal @ /d"' in (ROOT / "Dockerfile").read_text()


# ------------------------------------------------------------------ failures stay isolated

def error_strategies() -> list[tuple[str, str]]:
    return [(p.name, m) for p in CONFIGS for m in re.findall(r"errorStrategy\s*=\s*(.+)$", p.read_text(), re.M)]


def groovy_ternary(expression: str) -> str:
    """A Groovy errorStrategy closure body (ternaries, `in` a list or range, comparisons) as Python."""
    text = expression.strip()
    while text.startswith("(") and matching(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    depth, question = 0, None
    for i, char in enumerate(text):
        depth += char in "(["
        depth -= char in ")]"
        if depth == 0 and char == "?" and question is None and text[i + 1] != ":":
            question = i
        elif depth == 0 and char == ":" and question is not None:
            inner = 0
            for j in range(question + 1, i):  # a nested ternary in the true branch has its own ':'
                inner += text[j] == "?"
                inner -= text[j] == ":"
            if inner == 0:
                condition, yes, no = text[:question], text[question + 1:i], text[i + 1:]
                return f"(({groovy_ternary(yes)}) if ({groovy_condition(condition)}) else ({groovy_ternary(no)}))"
    return groovy_condition(text)


def groovy_condition(text: str) -> str:
    text = re.sub(r"\((\d+)\.\.(\d+)\)", lambda m: f"list(range({m.group(1)}, {int(m.group(2)) + 1}))", text)
    text = re.sub(r"(\+\s*)(\d+)", r"\1[\2]", text)
    return text.replace("task.", "task_").replace("&&", " and ").replace("||", " or ")


def error_action(exit_status: int, attempt: int, max_retries: int = 1) -> str:
    strategy = re.search(r"^    errorStrategy\s*=\s*\{(.+)\}\s*$", (ROOT / "conf" / "base.config").read_text(), re.M).group(1)
    return eval(groovy_ternary(strategy), {"task_exitStatus": exit_status, "task_attempt": attempt,
                                           "task_maxRetries": max_retries})


def test_failures_are_handled_by_cause():
    """Memory or time (130-145, 104, 175): retried, then the pair's own failure; 65, a sample's bad data:
    ignored (its pairs stop, the others finish); anything else (a code error, an image that will not
    start: 1, 125, 126, 127...): the run stops ('finish'). An ignored task still ends the run non-zero."""
    for status in (*range(130, 146), 104, 175):
        assert error_action(status, attempt=1) == "retry", status
        assert error_action(status, attempt=2) == "ignore", status
    assert error_action(65, attempt=1) == "ignore"
    for status in (1, 2, 64, 66, 125, 126, 127, 255):
        assert error_action(status, attempt=1) == "finish", status
    base = (ROOT / "conf" / "base.config").read_text()
    assert re.search(r"^    maxRetries\s*=\s*1$", base, re.M)
    from scdeal.errors import EXIT_DATA_ERROR
    assert EXIT_DATA_ERROR == 65
    assert re.search(r"^workflow\.failOnIgnore = true$", (ROOT / "nextflow.config").read_text(), re.M)
    assert "on_failure" not in config_text(), "no per-process exception: MultiQC fails the run as any code error does"
    for where, strategy in error_strategies():
        if "retry" in strategy:
            assert "task.attempt <= task.maxRetries" in strategy, f"{where}: unbounded retry: {strategy}"


def test_failure_checker_reads_the_pre_issue_strategy():
    """The evaluator above on the strategy this pipeline shipped before: every failure was ignored."""
    old = "task.exitStatus in ((130..145) + 104 + 175) && task.attempt <= task.maxRetries ? 'retry' : 'ignore'"
    def verdict(status: int) -> str:
        return eval(groovy_ternary(old), {"task_exitStatus": status, "task_attempt": 1, "task_maxRetries": 1})

    assert verdict(137) == "retry" and verdict(1) == "ignore" and verdict(127) == "ignore"


def test_docs_say_what_the_config_does_on_failure():
    retries = int(re.search(r"^    maxRetries\s*=\s*(\d+)", (ROOT / "conf" / "base.config").read_text(), re.M).group(1))
    section = USAGE[USAGE.index("### What happens when a task fails"):]
    section = section[:section.index("\n### ", 4)]
    assert f"`maxRetries = {retries}`" in section
    for promise in ("| 65 |", "'ignore'", "'finish'", "130–145, 104, 175", "scdeal_status.tsv", "MultiQC",
                    "workflow.failOnIgnore = true", "non-zero exit status", "validation", "The local runner"):
        assert promise in section, promise
    completion = UTILS.read_text()
    assert "scdeal_status.tsv" in completion and "ignoredCount" in completion
    assert "scdeal_status.tsv" in WORKFLOW.read_text()


# ------------------------------------------------------------------ staging: no output where an input lies

STAGING = "_inputs/"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.parent.name)
def test_inputs_are_staged_apart_from_outputs(path):
    """A file input is staged under `_inputs/` (never a sample id or drug key: both start with a letter or
    digit), so an input named like the sample cannot take the output folder `${meta.id}/`."""
    inputs = block(path, "input")
    paths = re.findall(r"path\(?\s*(\w+)\s*(?:,\s*stageAs:\s*'([^']*)')?", inputs)
    assert paths, path
    for name, stage_as in paths:
        assert stage_as.startswith(STAGING), f"{path.parent.name}: input '{name}' is staged at the task root"
    patterns = [stage for _, stage in paths]
    assert len(set(patterns)) == len(patterns) or all("?" in p or p == f"{STAGING}*" for p in patterns), path
    for output in re.findall(r'path\(?\s*"([^"]+)"', block(path, "output")):
        assert not output.startswith(STAGING), f"{path.parent.name}: output {output} under the input folder"


def test_output_folders_cannot_be_the_input_folder():
    sample = json.loads((ROOT / "assets" / "schema_input.json").read_text())["items"]["properties"]["sample"]["pattern"]
    folder = STAGING.rstrip("/")
    assert not re.match(sample, folder), f"a sample may be called '{folder}'"
    assert normalise_name(folder) != folder
    prefixes = {re.search(r'prefix\s*=\s*task\.ext\.prefix \?: "([^"]+)"', p.read_text()).group(1) for p in SCDEAL_MODULES}
    assert prefixes == {"${meta.id}", "${meta.id}/${meta.drug_key}"}


# ------------------------------------------------------------------ samplesheet keys

def test_nextflow_normalises_drugs_as_python_does():
    body = re.search(r"def drugKey\(String drug\) \{(.*?)\n\}", UTILS.read_text(), re.S).group(1)
    regex = re.search(r"toUpperCase\(\)\.replaceAll\(/(.+?)/, ''\)", body).group(1)
    for drug in ("Erlotinib", "erlotinib", "I-BET-762", "i.bet.762", "5-FU", "AR 42", "Café"):
        assert re.sub(regex, "", drug.upper()) == normalise_name(drug), drug


def test_nextflow_and_python_agree_on_screen_rows():
    """A row whose drug normalises to ALL screens every drug, in both; neither lets it carry a label_key."""
    from scdeal.pipeline.samplesheet import SCREEN_LABEL_KEY
    utils = UTILS.read_text()
    body = re.search(r"def isScreen\(Map meta\) \{(.*?)\n\}", utils, re.S).group(1)
    assert f"meta.drug_key == '{SCREEN_DRUG_KEY}'" in body
    assert {normalise_name(d) for d in ("all", "All", "ALL")} == {SCREEN_DRUG_KEY}
    problems = re.search(r"def samplesheetProblems\(List rows\) \{(.*?)\n\}", utils, re.S).group(1)
    assert "if (isScreen(meta) && meta.label_key)" in problems and SCREEN_LABEL_KEY in problems
    workflow = WORKFLOW.read_text()
    assert "include { isScreen" in workflow and "screen: isScreen(meta)" in workflow


def test_nextflow_checks_keys_and_species_across_rows():
    """nf-schema's uniqueEntries compares raw spellings: the pipeline compares normalised drug names, and
    one species per sample, as scdeal.pipeline.samplesheet.key_problems does."""
    utils = UTILS.read_text()
    body = re.search(r"def samplesheetProblems\(List rows\) \{(.*?)\n\}", utils, re.S).group(1)
    assert "def pair = [ meta.id, meta.drug_key ]" in body
    assert "drug_key: drugKey(meta.drug)" in utils
    assert "first.species != meta.species" in body and "first.path != path" in body
    assert "samplesheetProblems(rows)" in utils and "error(" in utils


# ------------------------------------------------------------------ GPU

def gpu_processes() -> set[str]:
    return {process_name(p) for p in MODULES if "process_gpu" in [lab.value for lab in parse(p).processes[0].labels]}


def test_gpu_steps_are_exactly_those_given_a_device():
    """A --device cuda without the process_gpu label runs on a node (and image) without a GPU: on the CPU."""
    with_device = {name for name, flags in step_flags().items() if "device" in {flag for flag, _ in flags}}
    with_device |= {process_name(p) for p in MODULES if "--device" in block(p, "script")}
    assert with_device == gpu_processes() == {"SCDEAL_BULK_PRETRAIN", "SCDEAL_TRANSFER", "SCDEAL_EXPLAIN",
                                               "SCDEAL_SCREEN_PRETRAIN", "SCDEAL_SCREEN"}


def test_gpu_profile_gives_those_steps_a_gpu_and_the_cuda_image():
    base = (ROOT / "conf" / "base.config").read_text()
    gpu_block = base[base.index("withLabel:process_gpu"):]
    assert "accelerator = { workflow.profile.tokenize(',').contains('gpu') ? 1 : null }" in gpu_block
    assert "ext.use_gpu = { workflow.profile.tokenize(',').contains('gpu') }" in gpu_block
    assert any("-cuda" in name for name in pipeline_images())
    config = (ROOT / "nextflow.config").read_text()
    gpu = re.search(r"^    gpu\s*\{(.*?)^    \}", config, re.M | re.S).group(1)
    assert "params.device           = 'cuda'" in gpu
    for label in ("process_single", "process_low", "process_medium", "process_high"):
        assert f"withLabel:{label}" in base
    assert "130..145" in base and "104" in base


def test_only_gpu_tasks_get_the_gpu_in_their_container():
    """--gpus all / --nv only on the process_gpu label, never in the engines' run options (every task)."""
    for path in CONFIGS:
        text = path.read_text()
        assert not re.search(r"runOptions\s*=.*(--gpus|--nv)", text), f"{path.name}: the GPU for every task"
        for match in re.finditer(r"containerOptions\s*=\s*(.+)$", text, re.M):
            opening = text.rfind("withLabel:", 0, match.start())
            assert text[opening:].startswith("withLabel:process_gpu"), f"{path.name}: containerOptions outside process_gpu"
    config = (ROOT / "nextflow.config").read_text()
    gpu = re.search(r"^    gpu\s*\{(.*?)^    \}", config, re.M | re.S).group(1)
    assert "withLabel:process_gpu {" in gpu
    assert "containerOptions = { workflow.containerEngine in ['singularity', 'apptainer'] ? '--nv' : '--gpus all' }" in gpu
    assert {process_name(p) for p in MODULES if "process_gpu" in p.read_text()} == gpu_processes()


def test_slurm_gpu_example_requests_the_gpu():
    """Slurm ignores `accelerator`: the shipped example asks for the GPU of each GPU task under -profile gpu."""
    from test_strict_syntax import config_violations
    text = (ROOT / "conf" / "slurm_gpu.config").read_text()
    assert config_violations(text) == []
    body = text[text.index("withLabel:process_gpu"):]
    assert "executor = 'slurm'" in text
    assert "clusterOptions = { workflow.profile.tokenize(',').contains('gpu') ? '--gres=gpu:1' : '' }" in body
    executors = USAGE[USAGE.index("### Executors"):USAGE.index("### Custom resources")]
    assert "conf/slurm_gpu.config" in executors and "--gres=gpu:1" in executors


# ------------------------------------------------------------------ resume: the meta map

def meta_fields_by_process() -> dict[str, set[str]]:
    body = re.search(r"def metaFor\(String process, Map meta\) \{(.*?)\n\}", WORKFLOW.read_text(), re.S).group(1)
    return {name: set(re.findall(r"'(\w+)'", fields)) for name, fields in re.findall(r"(\w+)\s*:\s*\[([^\]]*)\]", body)}


def test_meta_map_holds_only_what_each_process_reads():
    """The meta map is part of a task's cache key: a field the process does not read (label_key, the raw
    drug spelling) would rerun it on -resume when edited."""
    fields = meta_fields_by_process()
    for path in SCDEAL_MODULES:
        name = process_name(path)
        read = set(re.findall(r"meta\.(\w+)", path.read_text()))
        assert fields.get(name) == read, f"{name} reads {sorted(read)} but is given {sorted(fields.get(name, []))}"


def module_of(process: str) -> Path:
    return next(p for p in SCDEAL_MODULES if process_name(p) == process)


def matching(text: str, start: int) -> int:
    """The index of the bracket closing the one at `start`."""
    depth = 0
    for i in range(start, len(text)):
        depth += text[i] in "([{"
        depth -= text[i] in ")]}"
        if depth == 0:
            return i
    raise AssertionError(f"unbalanced from {text[start:start + 60]!r}")


def top_level_items(text: str) -> list[str]:
    """The comma-separated items of an argument or list text, commas inside brackets or closures left alone."""
    items, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return [item.strip() for item in [*items, current] if item.strip()]


def input_arities(path: Path) -> list[int]:
    """Per input of a process: 1 for a val or path, the number of elements of a tuple."""
    lines = [line.strip() for line in block(path, "input").splitlines() if line.strip()]
    return [len(re.findall(r"\b(?:val|path)\(", line)) if line.startswith("tuple") else 1 for line in lines]


def test_workflow_calls_each_process_with_its_inputs():
    """Each call passes one channel per input, a tuple input gets a list of as many elements (its first,
    the meta map), and every output the workflow reads is emitted."""
    workflow = WORKFLOW.read_text()
    for match in re.finditer(r"^\s*(SCDEAL_\w+)\s*\(", workflow, re.M):
        name, path = match.group(1), module_of(match.group(1))
        args = top_level_items(workflow[match.end():matching(workflow, match.end() - 1)])
        arities = input_arities(path)
        assert len(args) == len(arities), f"{name} gets {len(args)} channels for {len(arities)} inputs"
        meta = workflow.index(f"metaFor('{name}'")
        before = workflow[:meta].rstrip()
        if arities[0] == 1:
            assert not before.endswith("["), f"{name} takes a meta map, not a tuple"
        else:
            opening = len(before) - 1
            assert workflow[opening] == "[", f"{name} takes a tuple"
            items = top_level_items(workflow[opening + 1:matching(workflow, opening)])
            assert len(items) == arities[0], f"{name}: tuple of {len(items)} for an input of {arities[0]}"
    for name, emit in set(re.findall(r"(SCDEAL_\w+)\.out\.(\w+)", workflow)):
        assert emit in re.findall(r"emit:\s*(\w+)", block(module_of(name), "output")), f"{name}.out.{emit}"


def test_status_table_lists_every_predicting_step():
    """scdeal_status.tsv has a row per samplesheet row: single-drug pairs (transfer) and screens alike."""
    workflow = WORKFLOW.read_text()
    status = workflow[workflow.index("// Which (sample, drug) pairs"):workflow.index("scdeal_status.tsv")]
    for process in ("SCDEAL_TRANSFER", "SCDEAL_EXPLAIN", "SCDEAL_EVALUATE", "SCDEAL_SCREEN"):
        assert f"{process}.out." in status, process
    assert "isScreen(meta)" in status


def test_every_process_call_builds_its_meta_with_meta_for():
    workflow = WORKFLOW.read_text()
    called = set(re.findall(r"^\s*(SCDEAL_\w+)\s*\(", workflow, re.M))
    assert called == set(meta_fields_by_process())
    for name in called:
        assert f"metaFor('{name}'" in workflow, f"{name} gets a meta map not built by metaFor"


# ------------------------------------------------------------------ versions

def versions_commands(text: str) -> list[str]:
    """The shell lines of a script or stub block that write versions.yml."""
    lines = [line.strip() for line in text.splitlines() if not line.strip().startswith("//")]
    return [line for line in lines if "versions.yml" in line or "END_VERSIONS" in line
            or re.match(r'"\$\{task\.process\}":', line) or re.match(r"\w+: \\\$\(", line)]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.parent.name)
def test_versions_are_keyed_by_the_process_and_equal_in_stub_and_script(path):
    script, stub = versions_commands(block(path, "script")), versions_commands(block(path, "stub"))
    assert script, f"{path}: the script writes no versions.yml"
    assert any("${task.process}" in line for line in script), f"{path}: versions.yml not keyed by task.process"
    assert [line for line in script if "multiqc_mqc_versions" not in line] == stub, f"{path}: stub and script differ"


def test_versions_writer_keeps_the_name_it_is_given():
    text = versions_yaml("SCDEAL:SCDEAL_CLUSTER")
    assert text.splitlines()[0] == '"SCDEAL:SCDEAL_CLUSTER":'
    assert yaml.safe_load(text)["SCDEAL:SCDEAL_CLUSTER"]["scdeal"]


def test_versions_are_collected_through_the_topic_with_the_workflow_versions():
    workflow = WORKFLOW.read_text()
    assert "channel.topic('versions')" in workflow and "workflow.nextflow.version" in workflow
    for path in SCDEAL_MODULES:
        assert re.search(r'path\("versions.yml"\)\s*, emit: versions, topic: versions', block(path, "output")), path
    assert "_mqc_versions.yml" in block(ROOT / "modules" / "local" / "multiqc" / "main.nf", "script")


def test_pipeline_info_versions_include_multiqc():
    """MultiQC runs after the versions it shows are collected: its own version joins the pipeline_info copy
    once it has run (the report's copy gets it inside the MultiQC task)."""
    workflow = WORKFLOW.read_text()
    stored = workflow[workflow.index("// pipeline_info: every process's versions"):]
    stored = stored[:stored.index("emit:")]
    assert 'storeDir: "${params.outdir}/pipeline_info", name: \'scdeal_software_mqc_versions.yml\'' in stored
    assert re.search(r"ch_versions\s+\.mix\(MULTIQC\.out\.versions", stored)
    report = workflow[workflow.index("ch_versions_yml = "):workflow.index("ch_versions_yml = ") + 200]
    assert "storeDir" not in report


# ------------------------------------------------------------------ nf-core layout, report config, tests

def test_nf_core_files():
    assert yaml.safe_load((ROOT / ".nf-core.yml").read_text())["repository_type"] == "pipeline"
    modules_json = json.loads((ROOT / "modules.json").read_text())
    manifest = re.search(r"manifest \{(.*?)\n\}", (ROOT / "nextflow.config").read_text(), re.S).group(1)
    name = re.search(r"name\s*=\s*'([^']+)'", manifest).group(1)
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", name), f"manifest.name '{name}' is not owner/name"
    assert modules_json["name"] == name
    utils = UTILS.read_text()
    assert "paramsSummaryLog(workflow)" in utils
    dump = re.search(r"def dumpParametersToJson\(outdir\) \{(.*?)\n\}", utils, re.S).group(1)
    assert 'params_${params.trace_report_suffix}.json' in dump and '"${outdir}/pipeline_info/${filename}"' in dump
    for path in (".prettierrc.yml", ".prettierignore", ".gitattributes", ".github/workflows/linting.yml",
                 ".github/workflows/branch.yml", ".github/ISSUE_TEMPLATE/bug_report.yml",
                 ".github/ISSUE_TEMPLATE/feature_request.yml", ".github/ISSUE_TEMPLATE/config.yml",
                 ".github/PULL_REQUEST_TEMPLATE.md"):
        assert (ROOT / path).is_file(), path
    for path in (ROOT / ".github").rglob("*.yml"):
        assert isinstance(yaml.safe_load(path.read_text()), dict), path


def test_ci_lints_with_the_real_tools():
    """What cannot run here runs on the first push: Nextflow's strict linter on every script and config,
    nf-core's pipeline lint (--release on a release), prettier and ruff."""
    lint = yaml.safe_load((ROOT / ".github" / "workflows" / "linting.yml").read_text())["jobs"]
    runs = {name: "\n".join(step.get("run", "") for step in job["steps"]) for name, job in lint.items()}
    assert "nextflow lint" in runs["nextflow-lint"]
    for target in ("main.nf", "workflows", "subworkflows", "modules", "nextflow.config", "conf"):
        assert f" {target}" in runs["nextflow-lint"], target
    assert lint["nextflow-lint"]["strategy"]["matrix"]["NXF_VER"] == ["25.04.0", "latest-everything"]
    assert "nf-core -l lint_log.txt pipelines lint" in runs["nf-core"] and "lint --release" in runs["nf-core"]
    assert "prettier@" in runs["prettier"] and "--check" in runs["prettier"]
    assert "ruff check src tests benchmarks bin" in runs["ruff"]
    assert yaml.safe_load((ROOT / ".nf-core.yml").read_text())["template"]["version"] == manifest_version()


def test_multiqc_search_patterns_are_used():
    config = yaml.safe_load((ROOT / "assets" / "multiqc_config.yml").read_text())
    used = set(config.get("custom_data", {})) | set(config.get("run_modules", []))
    for key in config.get("sp", {}):
        assert key in used, f"sp: {key} is read by no module and no custom_data entry"


def test_nf_test_snapshot_is_committed_and_uses_the_ignore_file():
    test = (ROOT / "tests" / "default.nf.test").read_text()
    snapshot = json.loads((ROOT / "tests" / "default.nf.test.snap").read_text())
    names = re.findall(r'test\("([^"]+)"\)', test)
    assert set(names) == set(snapshot), f"snapshot entries {set(snapshot)} vs tests {names}"
    assert "ignoreFile: 'tests/.nftignore'" in test
    listed = [entry for content in snapshot.values() for item in content["content"] if isinstance(item, list)
              for entry in item if isinstance(entry, str)]
    for pattern in (ROOT / "tests" / ".nftignore").read_text().split():
        regex = glob_regex(pattern)
        assert any(re.fullmatch(regex, entry.split(":md5")[0]) for entry in listed), f".nftignore: {pattern} matches nothing"


def test_nf_test_snapshot_lists_the_expected_outputs():
    """The snapshot is written by nf-test (the nf-test workflow regenerates it on request); it must hold
    what a run of -profile test now publishes: every sample validated, the screen's bulk model in
    screen/_bulk/, MultiQC's version, the pipeline version, and a timestamp no older than its content."""
    snapshot = json.loads((ROOT / "tests" / "default.nf.test.snap").read_text())
    nf_test = (ROOT / ".github" / "workflows" / "nf-test.yml").read_text()
    assert "--update-snapshot" in nf_test and "update_snapshot" in nf_test
    real, stub = snapshot["-profile test"], snapshot["-profile test -stub"]
    sheet = Path(config_params((ROOT / "conf" / "test.config").read_text(), ROOT)["input"])
    samples = sorted({row.split(",")[0] for row in sheet.read_text().splitlines()[1:] if row})
    assert samples
    for entry in (real, stub):
        names = next(item for item in entry["content"] if isinstance(item, list))
        assert names == sorted(names)
        assert not any(name == "screen/bulk" or name.startswith("screen/bulk/") for name in names)
        assert "screen/_bulk/screen_bulk.h5ad" in names and "screen/_bulk/screen_model.pt" not in names
        for sample in samples:
            assert f"validation/{sample}/{sample}.validation.json" in names, sample
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}", entry["timestamp"])
        assert set(entry["meta"]) == {"nf-test", "nextflow"}
    tasks = real["content"][0]
    assert tasks == stub["content"][0]
    versions = real["content"][1]
    assert versions["Workflow"] == {"scdeal/scdeal": f"v{manifest_version()}"}
    assert "multiqc" in versions["MULTIQC"] and "SCDEAL_VALIDATE" in versions
    # every process runs on the test profile but the bulk pretraining (only with --member_init pretrained)
    pretraining = {"SCDEAL_BULK_PRETRAIN", "SCDEAL_SCREEN_PRETRAIN"}
    assert set(versions) - {"Workflow", "MULTIQC"} == {process_name(p) for p in SCDEAL_MODULES} - pretraining
    assert re.search(r'"nf-test": "[\d.]+"', (ROOT / "tests" / "default.nf.test.snap").read_text())
    assert "validation/**" in (ROOT / "tests" / ".nftignore").read_text().split()


def glob_regex(pattern: str) -> str:
    """A glob of nf-test or of a module output (`**/`, `*`, `{a,b}`, `${meta.id}`) as a regex."""
    pattern = re.sub(r"\$\{meta\.\w+\}", "@", pattern)
    regex = re.escape(pattern).replace("@", "[^/]+").replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
    return re.sub(r"\\\{(.*?)\\\}", lambda m: "(" + m.group(1).replace(",", "|") + ")", regex)


def test_profiles_read_no_path_outside_the_pipeline():
    for path in CONFIGS:
        assert "projectDir}/.." not in path.read_text(), f"{path.name} reads beside the checkout"
    for sheet in (ROOT / "assets").glob("samplesheet*.csv"):
        assert "../" not in sheet.read_text(), sheet


# ------------------------------------------------------------------ parameters

def used_params() -> set[str]:
    names = set()
    for path in NF_FILES:
        names |= {p.name for p in parse(path).params}
    for path in CONFIGS:
        names |= set(re.findall(r"params\.(\w+)", path.read_text()))
    return names


# the one parameter whose default is computed when the run starts (the nf-core template's form): no schema default
LAUNCH_TIME_PARAMS = {"trace_report_suffix": "new java.util.Date().format('yyyy-MM-dd_HH-mm-ss')"}


def test_launch_time_params_take_the_template_form():
    config = (ROOT / "nextflow.config").read_text()
    for name, expression in LAUNCH_TIME_PARAMS.items():
        assert re.search(rf"^    {name}\s+= {re.escape(expression)}$", config, re.M), name
        assert "default" not in schema_parameters(ROOT)[name], name
        assert name not in config_params(config, ROOT), "read as a literal by the local runner"


def test_every_param_used_is_declared_and_documented():
    declared = set(config_params((ROOT / "nextflow.config").read_text(), ROOT)) | set(LAUNCH_TIME_PARAMS)
    schema = set(schema_defaults(ROOT))
    for name in used_params():
        assert name in declared, f"params.{name} is used but not declared in nextflow.config"
        assert name in schema, f"params.{name} is not in nextflow_schema.json"
    hidden = {k for k, v in schema_parameters(ROOT).items() if v.get("hidden")}
    for name in schema - hidden:
        assert f"`--{name}`" in USAGE, f"--{name} is not documented in docs/usage.md"


def test_schema_defaults_equal_config_defaults():
    config = config_params((ROOT / "nextflow.config").read_text(), ROOT) | dict.fromkeys(LAUNCH_TIME_PARAMS)
    schema = schema_defaults(ROOT)
    assert set(config) == set(schema)
    for name, default in schema.items():
        assert config[name] == default, f"{name}: nextflow.config {config[name]!r} vs schema {default!r}"


def test_schema_params_have_types_and_help():
    for name, spec in schema_parameters(ROOT).items():
        assert spec.get("type") and spec.get("description"), name


def step_parsers() -> dict[str, object]:
    """Process name → the parser of its step, for every scdeal process of conf/modules.config."""
    return {process: bin_parser(f"scdeal_{process.removeprefix('SCDEAL_').lower()}.py")
            for process in step_flags() if process.startswith("SCDEAL_")}


def test_step_defaults_equal_schema_defaults():
    """A step run by hand behaves as the pipeline does by default (a schema string such as `256,128` is
    read as the step reads it)."""
    schema = schema_defaults(ROOT)
    for process, parser in step_parsers().items():
        actions = {a.dest: a for a in parser._actions}
        for flag, param in step_flags()[process]:
            if flag == "device":
                continue
            action, value = actions[flag], schema[param]
            expected = action.type(value) if isinstance(value, str) and callable(action.type) else value
            assert action.default == expected, f"{process} --{flag}: {action.default!r} vs {value!r}"


def process_configs() -> dict[str, list[tuple[type, str]]]:
    """Process name → the (configuration dataclass, flag prefix) pairs whose fields are its step's flags."""
    from scdeal.pipeline.steps import STEPS
    parsers = {step: importlib.import_module(f"scdeal.pipeline.steps.{step}").build_parser() for step in STEPS}
    return {f"SCDEAL_{step.upper()}": parser.configs for step, parser in parsers.items() if parser.configs}


def test_every_setting_of_a_step_is_a_pipeline_parameter():
    """Each flag generated from a step's configuration is set from a parameter in conf/modules.config, so
    every hyperparameter can be changed on the pipeline's command line."""
    from dataclasses import fields

    configured = process_configs()
    # evaluation has no settings; validation borrows the transfer's min_gene_overlap
    unconfigured = {"SCDEAL_EVALUATE", "SCDEAL_VALIDATE", "MULTIQC"}
    assert set(configured) == set(step_flags()) - unconfigured, "a step without its configuration"
    for process, configs in configured.items():
        passed = {flag for flag, _ in step_flags()[process]}
        missing = {prefix + f.name for config, prefix in configs for f in fields(config)} - passed
        assert not missing, f"{process}: settings not passed by conf/modules.config: {sorted(missing)}"


def test_parameters_table_of_the_docs_is_the_schema():
    """docs/usage.md lists every visible parameter of each schema group with its default and choices."""
    schema = json.loads((ROOT / "nextflow_schema.json").read_text())
    order = [ref["$ref"].rsplit("/", 1)[-1] for ref in schema["allOf"]]
    for group in (schema["$defs"][name] for name in order):
        for name, spec in group["properties"].items():
            if spec.get("hidden"):
                continue
            default = "" if spec.get("default") is None else f"`{spec['default']}`"
            text = spec["description"] + (f" Choices: {', '.join(map(str, spec['enum']))}." if "enum" in spec else "")
            assert f"| `--{name}` | {default} | {text} |" in USAGE, name


def publish_folders() -> dict[str, str]:
    """Process → the folder under --outdir that conf/modules.config publishes its outputs in."""
    text = (ROOT / "conf" / "modules.config").read_text()
    return {name: re.search(r'path:\s*\{\s*"\$\{params\.outdir\}/(\w+)"', body).group(1)
            for name, body in re.findall(r"withName:\s*'(\w+)'\s*\{(.*?)\n    \}", text, re.S)}


def test_every_configured_process_exists_and_every_process_is_configured():
    processes = {process_name(p) for p in MODULES}
    configured = set(publish_folders())
    assert configured <= processes, f"conf/modules.config configures no such process: {configured - processes}"
    assert processes <= configured, f"processes without publishDir and ext.args: {processes - configured}"
    from scdeal.pipeline.runner import PROCESS
    assert set(PROCESS.values()) == {process_name(p) for p in SCDEAL_MODULES}


def test_local_runner_writes_where_nextflow_publishes(tmp_path):
    """The same tree from both: a task's folder is its process's publishDir, then the module's prefix."""
    from scdeal.pipeline.runner import PROCESS, build_tasks
    from scdeal.pipeline.samplesheet import Row
    params = schema_defaults(ROOT) | {"bulk_expression": "e.csv", "bulk_response": "r.csv"}
    rows = [Row("s1", tmp_path / "s1.h5ad", "I-BET-762", "human", "response"),
            Row("s1", tmp_path / "s1.h5ad", "all", "human", None)]
    folders = publish_folders()
    screen_bulk = re.search(r"metaFor\('SCDEAL_SCREEN_PREPARE', \[ id: '(\w+)' \]\)", WORKFLOW.read_text()).group(1)
    for task in build_tasks(rows, params, outdir=tmp_path):
        process = PROCESS[task.step]
        meta = {"id": {"bulk_prepare": "IBET762", "bulk_pretrain": "IBET762", "screen_prepare": screen_bulk,
                       "screen_pretrain": screen_bulk}.get(task.step, "s1"), "drug_key": "IBET762"}
        prefix = re.search(r'prefix\s*=\s*task\.ext\.prefix \?: "([^"]+)"', module_of(process).read_text()).group(1)
        folder = prefix.replace("${meta.id}", meta["id"]).replace("${meta.drug_key}", meta["drug_key"])
        assert "$" not in folder, prefix
        expected = tmp_path / folders[process] / folder
        assert task.outdir == expected, task.name


def test_no_sample_can_take_a_folder_of_the_run():
    """A per-run or per-drug artefact is never published where some valid sample id would put its own:
    in each publish folder, the per-sample subfolders are `<sample>/`, and every other name used there
    (the screen's `_bulk`) is one no sample id can match."""
    sample = json.loads((ROOT / "assets" / "schema_input.json").read_text())["items"]["properties"]["sample"]["pattern"]
    from scdeal.pipeline.samplesheet import PATTERNS
    assert PATTERNS["sample"] == sample
    workflow = WORKFLOW.read_text()
    fixed_ids = re.findall(r"metaFor\('(\w+)', \[ id: '([^']+)' \]\)", workflow)
    assert fixed_ids, "the screen's bulk model has a fixed id"
    folders = publish_folders()
    per_sample = {folders[name] for name in meta_fields_by_process() if name not in {p for p, _ in fixed_ids}
                  and name not in ("SCDEAL_BULK_PREPARE", "SCDEAL_BULK_PRETRAIN")}
    for process, fixed in fixed_ids:
        if folders[process] in per_sample:
            assert not re.match(sample, fixed), f"{process} publishes {folders[process]}/{fixed}/, a valid sample id"
    # the per-drug folder holds drug keys only, and no process publishes per sample there
    assert folders["SCDEAL_BULK_PREPARE"] not in per_sample
    # top-level folders: none is a sample's (samples only appear below a step's folder)
    tops = set(folders.values()) | {"pipeline_info", "multiqc"}
    assert all(re.fullmatch(r"[a-z_]+", top) for top in tops)
    # the old layout, screen/bulk/, would collide with a sample named 'bulk'
    assert re.match(sample, "bulk")


def test_file_parameters_are_checked_file_paths():
    """A parameter the pipeline opens as a file is a file path that nf-schema checks exists."""
    spec = schema_parameters(ROOT)
    opened = set(re.findall(r"file\(params\.(\w+), checkIfExists: true\)", (ROOT / "main.nf").read_text()))
    assert {"bulk_expression", "cosmic_map", "drugs"} <= opened
    for name in opened:
        assert spec[name].get("format") == "file-path" and spec[name].get("exists") is True, name


def test_profiles_exist():
    config = (ROOT / "nextflow.config").read_text()
    for profile in ("test", "test_full", "docker", "singularity", "apptainer", "conda", "gpu", "debug"):
        assert re.search(rf"^\s*{profile}\s*\{{", config, re.M), profile


def test_test_profile_files_exist():
    params = config_params((ROOT / "conf" / "test.config").read_text(), ROOT)
    for key in ("input", "bulk_expression", "bulk_response"):
        for path in response_paths(params[key]):  # bulk_response may list several tables
            assert Path(path).exists(), (key, path)
    assert len(response_paths(params["bulk_response"])) == 4  # binary calls, LN_IC50, the screen's extra drugs, AUC

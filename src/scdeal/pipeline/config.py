"""The Nextflow layer's configuration read by the local runner, so the two never disagree: parameter
defaults from nextflow_schema.json and test profiles from conf/*.config. Each step's flags come from the
steps themselves (settings.py), which also generates the Nextflow layer's copies."""
from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError, InputErrors

__all__ = ["PROFILE_FILES", "config_params", "parameters_help", "project_dir", "resolve_params", "schema_defaults",
           "schema_groups", "schema_parameters"]

PROFILE_FILES = {"test": "conf/test.config", "test_full": "conf/test_full.config"}


def project_dir() -> Path:
    """The pipeline checkout holding nextflow_schema.json (the package lives in its src/)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "nextflow_schema.json").exists():
        raise InputError(f"Pipeline files not found beside the package ({root}): install scdeal from a checkout "
                         "with `pip install -e .` so that `scdeal run` can read nextflow_schema.json and conf/.")
    return root


def schema_parameters(root: Path) -> dict[str, dict]:
    """Every parameter of nextflow_schema.json with its definition (type, default, help)."""
    schema = json.loads((root / "nextflow_schema.json").read_text())
    params = {}
    for group in schema.get("$defs", {}).values():
        params.update(group.get("properties", {}))
    params.update(schema.get("properties", {}))
    return params


def schema_defaults(root: Path) -> dict[str, Any]:
    """Every parameter of nextflow_schema.json with its default (None where it has none)."""
    return {k: v.get("default") for k, v in schema_parameters(root).items()}


PARAM_LINE = re.compile(r"""^\s*([A-Za-z_]\w*)\s*=\s*('[^']*'|"[^"]*"|[^\s/]+)\s*(//.*)?$""")


def config_params(text: str, project: Path) -> dict[str, Any]:
    """`key = value` lines inside `params { }` blocks of a Nextflow config (literals and ${projectDir})."""
    values, depth, in_params = {}, 0, False
    for line in text.splitlines():
        stripped = line.strip()
        if not in_params and re.match(r"^params\s*\{", stripped):
            in_params, depth = True, 1
            continue
        if in_params:
            depth += stripped.count("{") - stripped.count("}")
            if depth <= 0:
                in_params = False
                continue
            match = PARAM_LINE.match(line)
            if match and depth == 1:
                values[match.group(1)] = groovy_literal(match.group(2), project)
    return values


def groovy_literal(text: str, project: Path) -> Any:
    """The Python value of a Groovy literal: boolean, null, string (with ${projectDir}), integer or number."""
    text = text.strip().rstrip(",")
    if text in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[text]
    if text[0] in "'\"" and text[-1] == text[0]:
        return text[1:-1].replace("${projectDir}", str(project)).replace("$projectDir", str(project))
    try:
        return int(text)
    except ValueError:
        return float(text)


def load_params_file(path: str | Path) -> dict[str, Any]:
    """The parameters of a -params-file (YAML, or JSON by its suffix) (InputError: the file is missing, unreadable or
    not a mapping)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Params file '{path}' does not exist.")
    try:
        data = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise InputError(f"Params file '{path}' is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}") from err
    if not isinstance(data, dict):
        raise InputError(f"Params file '{path}' must hold a mapping of parameter names to values.")
    return data


def coerce(name: str, value: Any, spec: dict) -> Any:
    """`value` as the schema type of parameter `name` (integer, number, boolean), checked against its enum and
    range as nf-schema checks them under Nextflow (InputError: not of the type, or not an allowed value)."""
    kind = spec.get("type")
    try:
        if kind == "integer":
            value = int(value)
        elif kind == "number":
            value = float(value)
        elif kind == "boolean":
            value = value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
    except (TypeError, ValueError):
        raise InputError(f"Parameter --{name}: '{value}' is not a valid {kind}.") from None
    if "enum" in spec and value is not None and value not in spec["enum"]:
        raise InputError(f"Parameter --{name}: '{value}' is not one of {', '.join(map(str, spec['enum']))}.")
    if kind in ("integer", "number") and value is not None and \
            not spec.get("minimum", value) <= value <= spec.get("maximum", value):  # either bound may be absent
        raise InputError(f"Parameter --{name}: {value} is outside its range "
                         f"[{spec.get('minimum', '-inf')}, {spec.get('maximum', 'inf')}].")
    return value


def resolve_params(root: Path, profiles: list[str], *, params_file: str | None,
                   overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults ← profiles ← params file ← command line, each checked against the schema."""
    spec = schema_parameters(root)
    params = schema_defaults(root)
    layers = []
    for profile in profiles:
        if profile not in PROFILE_FILES:
            raise InputError(f"Unknown profile '{profile}' for the local runner (known: {', '.join(PROFILE_FILES)}).")
        layers.append(config_params((root / PROFILE_FILES[profile]).read_text(), root))
    if params_file:
        layers.append(load_params_file(params_file))
    layers.append(overrides)
    problems = []
    for layer in layers:
        for key, value in layer.items():
            if key not in spec:
                close = difflib.get_close_matches(key, list(spec), n=1)
                problems.append(f"unknown parameter '{key}'" + (f": did you mean '{close[0]}'?" if close else ""))
                continue
            params[key] = coerce(key, value, spec[key])
    if problems:
        raise InputErrors(problems)
    return interpolate_params(params)


PARAM_REFERENCE = re.compile(r"\$\{params\.(\w+)\}")


def interpolate_params(params: dict[str, Any]) -> dict[str, Any]:
    """`${params.NAME}` inside a profile's values, filled in as Nextflow fills it: with NAME's final value."""
    missing = set()

    def value_of(match: re.Match) -> str:
        if params.get(match.group(1)) in (None, ""):
            missing.add(match.group(1))
        return str(params.get(match.group(1)))

    filled = {key: PARAM_REFERENCE.sub(value_of, value) if isinstance(value, str) else value
              for key, value in params.items()}
    if missing:
        raise InputError(f"This profile builds paths from --{', --'.join(sorted(missing))}: set it on the command line "
                         "(see docs/usage.md).")
    return filled


def schema_groups(root: Path) -> list[dict]:
    """Each nextflow_schema.json group (title, description, properties, required), in the order of its allOf."""
    schema = json.loads((root / "nextflow_schema.json").read_text())
    defs = schema.get("$defs", {})
    order = [ref["$ref"].rsplit("/", 1)[-1] for ref in schema.get("allOf", []) if "$ref" in ref]
    return [defs[name] for name in order + [n for n in defs if n not in order]]


def describe_parameter(name: str, spec: dict, required: bool) -> str:
    """One parameter as `nextflow run . --help` shows it: type, description, choices, default."""
    kind = spec.get("type", "")
    kind = "|".join(kind) if isinstance(kind, list) else kind
    text = spec.get("description", "")
    if "enum" in spec:
        text += f" (accepted: {', '.join(map(str, spec['enum']))})"
    if spec.get("default") is not None:
        text += f" [default: {spec['default']}]"
    return f"  --{name:<28} [{kind}{', required' if required else ''}] {text}"


def parameters_help(root: Path, show_hidden: bool = False, only: str | None = None) -> str:
    """The parameters of nextflow_schema.json grouped as the schema groups them (hidden ones on request),
    or everything the schema says about one parameter."""
    if only:
        spec = schema_parameters(root).get(only)
        if spec is None:
            close = difflib.get_close_matches(only, list(schema_parameters(root)), n=1)
            raise InputError(f"No parameter '{only}'" + (f": did you mean '{close[0]}'?" if close else "."))
        return "\n".join([f"--{only}"] + [f"    {key:<12}: {value}" for key, value in spec.items()]) + "\n"
    blocks = []
    for group in schema_groups(root):
        required = set(group.get("required", []))
        shown = [describe_parameter(name, spec, name in required) for name, spec in group.get("properties", {}).items()
                 if show_hidden or not spec.get("hidden")]
        if shown:
            blocks.append("\n".join([group.get("title", ""), f"  {group.get('description', '')}", *shown]))
    footer = "" if show_hidden else "\n !! Hiding hidden parameters: add --show_hidden (or --help_full) to show them !!\n"
    return "\n\n".join(blocks) + "\n" + footer

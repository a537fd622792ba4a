"""Every step setting from one source: the steps' parsers, which are generated from their configuration
dataclasses (plus the few flags a step adds beside them, `EXTRA_SETTINGS`).

The local runner passes each step its settings from here. The Nextflow layer's copies are generated from
here too, by `scdeal sync-config` (a test fails when they drift): the step-settings part of the params block
of nextflow.config, their definitions in nextflow_schema.json, each process's flags (conf/flags.config,
`ext.flags`; `ext.args` stays free for a user's extras) and the parameter tables of docs/usage.md. So a new
field in a step's dataclass is the one edit that exposes it everywhere.
"""
from __future__ import annotations

import argparse
import importlib
import json
import re
from dataclasses import Field, dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from .flags import int_tuple, parse_bool
from .steps import STEPS

__all__ = ["Setting", "render_flags_config", "settings_of", "step_flags", "sync_config"]

# flags a step's parser adds beside its dataclasses' fields that are settings, not inputs
EXTRA_SETTINGS = {"transfer": ("baseline",), "validate": ("min_gene_overlap",)}
# the pipeline parameter of a field where its name alone would be ambiguous across steps
PARAM_OF = {"lr": "bulk_lr", "weight_decay": "bulk_weight_decay", "batch_size": "bulk_batch_size",
            "ae_epochs": "bulk_epochs", "predictor_epochs": "bulk_epochs"}
RENAMED_IN = ("BulkConfig",)
# the schema group of each step's settings; the group of the step that declares a setting first wins
GROUP_OF_STEP = {"bulk_prepare": "bulk_options", "bulk_pretrain": "bulk_options", "cluster": "single_cell_options",
                 "transfer": "transfer_options", "explain": "explain_options", "screen": "screen_options",
                 "validate": "transfer_options", "screen_prepare": "bulk_options", "screen_pretrain": "bulk_options"}
GROUP_OF_PARAM = {"seed": "compute_options", "device": "compute_options"}
DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"
BEGIN, END = "// BEGIN step settings", "// END step settings"
DOCS_BEGIN, DOCS_END = "<!-- BEGIN parameters", "<!-- END parameters -->"


@dataclass(frozen=True)
class Setting:
    """One setting of one step: its flag, the pipeline parameter that sets it, and its definition."""

    step: str
    flag: str
    param: str
    spec: dict

    @property
    def process(self) -> str:
        """The Nextflow process that runs the step."""
        return f"SCDEAL_{self.step.upper()}"


def parser_of(step: str) -> argparse.ArgumentParser:
    """The step's own parser (its flags' single source)."""
    return importlib.import_module(f"scdeal.pipeline.steps.{step}").build_parser()


@cache
def settings_of(step: str) -> tuple[Setting, ...]:
    """The settings of a step in its parser's order, each with its parameter and schema definition."""
    parser = parser_of(step)
    owners = {prefix + f.name: (config, f) for config, prefix in getattr(parser, "configs", ()) for f in fields(config)}
    wanted = set(owners) | set(EXTRA_SETTINGS.get(step, ())) | {"device"}
    out = []
    for action in parser._actions:
        if action.dest not in wanted:
            continue
        config, field = owners.get(action.dest, (None, None))
        renamed = config is not None and config.__name__ in RENAMED_IN
        param = PARAM_OF.get(field.name, field.name) if renamed else action.dest
        out.append(Setting(step, action.dest, param, parameter_spec(action, field)))
    return tuple(out)


def step_flags() -> dict[str, list[tuple[str, str]]]:
    """Process name → [(flag, parameter)] of every scdeal step."""
    return {f"SCDEAL_{step.upper()}": [(s.flag, s.param) for s in settings_of(step)] for step in STEPS}


def parameter_spec(action: argparse.Action, field: Field | None) -> dict:
    """The nextflow_schema.json definition of the parameter behind a flag: type, default, choices, limits, help."""
    kind = {int: "integer", float: "number", parse_bool: "boolean"}.get(action.type, "string")
    default = ",".join(map(str, action.default)) if isinstance(action.default, tuple) else action.default
    spec: dict[str, Any] = {"type": kind, "description": sentence(action.help), "default": default}
    meta = field.metadata if field is not None else {}
    if meta.get("details"):
        spec["help_text"] = meta["details"]
    if action.choices:
        spec["enum"] = list(action.choices)
    if action.type is int_tuple:
        spec["pattern"] = r"^\d+(,\d+)*$"
    if action.dest == "device":
        spec["pattern"] = DEVICE_PATTERN
    spec |= {k: meta[k] for k in ("minimum", "maximum") if k in meta}
    return {k: v for k, v in spec.items() if v is not None}


def sentence(text: str | None) -> str:
    """A flag's help as a sentence: capital first letter, final full stop."""
    text = (text or "").replace("%%", "%").strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def pipeline_parameters() -> dict[str, tuple[str, dict]]:
    """Every parameter that sets a step setting → (its schema group, its definition), in the steps' order."""
    params: dict[str, tuple[str, dict]] = {}
    for step in sorted(STEPS, key=lambda step: step == "validate"):  # validation borrows the transfer's minimum
        for s in settings_of(step):
            if s.param not in params:
                params[s.param] = (GROUP_OF_PARAM.get(s.param, GROUP_OF_STEP[step]), s.spec)
            elif params[s.param][1]["default"] != s.spec["default"]:
                raise ValueError(f"--{s.param}: {s.process} --{s.flag} defaults to {s.spec['default']!r}, another "
                                 f"step to {params[s.param][1]['default']!r}: one parameter needs one default")
    return params


# ------------------------------------------------------------------ generated Nextflow files and docs

def groovy(value: Any) -> str:
    """A parameter's default as a Groovy literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"'{value}'" if isinstance(value, str) else repr(value)


def render_params_block(schema: dict) -> str:
    """The step-settings lines of nextflow.config's params block, grouped as in the schema."""
    generated = pipeline_parameters()
    lines = []
    for group in schema["$defs"].values():
        names = [n for n in group["properties"] if n in generated]
        if names:
            lines += ["", f"    // {group['title']}"]
            lines += [f"    {n:<27} = {groovy(generated[n][1]['default'])}" for n in names]
    return "\n".join([f"    {BEGIN}: generated by `scdeal sync-config` from the steps' settings, do not edit",
                      *lines[1:], f"    {END}"])


def render_flags_config() -> str:
    """conf/flags.config: each scdeal process's settings as flags (`ext.flags`), from the pipeline parameters."""
    blocks = []
    for process, flags in step_flags().items():
        items = "".join(f'            "--{flag} ${{params.{param}}}",\n' for flag, param in flags)
        blocks.append(f"    withName: '{process}' {{\n        ext.flags = {{ [\n{items}        ].join(' ') }}\n    }}\n")
    return ("// Generated by `scdeal sync-config` from the steps' settings (src/scdeal/pipeline/settings.py): do not\n"
            "// edit. Each scdeal process gets every setting of its step as a flag from its pipeline parameter;\n"
            "// `ext.args` (conf/modules.config, or your own config) adds a user's extra flags after these.\n"
            "process {\n" + "\n".join(blocks) + "}\n")


def updated_schema(schema: dict) -> dict:
    """The schema with each step setting defined from its step and placed in its group (after the group's
    other parameters, which are written by hand: they are not step settings)."""
    generated = pipeline_parameters()
    for group_id, group in schema["$defs"].items():
        kept = {n: spec for n, spec in group["properties"].items() if n not in generated}
        group["properties"] = kept | {n: spec for n, (g, spec) in generated.items() if g == group_id}
    return schema


def render_parameter_tables(schema: dict) -> str:
    """The "All parameters" tables of docs/usage.md: each schema group's visible parameters."""
    order = [ref["$ref"].rsplit("/", 1)[-1] for ref in schema["allOf"]]
    out = [f"{DOCS_BEGIN}: generated by `scdeal sync-config` from nextflow_schema.json, do not edit -->"]
    for group in (schema["$defs"][name] for name in order):
        rows = [table_row(name, spec) for name, spec in group["properties"].items() if not spec.get("hidden")]
        if rows:
            out += ["", f"### {group['title']}", "", group["description"], "", "| parameter | default | description |",
                    "|---|---|---|", *rows]
    return "\n".join([*out, "", DOCS_END])


def table_row(name: str, spec: dict) -> str:
    """One parameter as a row of the docs' tables: name, default, description and choices."""
    default = "" if spec.get("default") is None else f"`{spec['default']}`"
    choices = f" Choices: {', '.join(map(str, spec['enum']))}." if "enum" in spec else ""
    return f"| `--{name}` | {default} | {spec['description']}{choices} |"


def replace_between(text: str, markers: tuple[str, str], block: str, *, where: Path) -> str:
    """`text` with the block between the two marker lines (markers included) replaced by `block`."""
    begin, end = markers
    pattern = re.compile(rf"[ \t]*{re.escape(begin)}.*?{re.escape(end)}", re.S)
    if not pattern.search(text):
        raise ValueError(f"{where}: the markers '{begin}' ... '{end}' are missing")
    return pattern.sub(lambda _: block, text, count=1)


def generated_files(root: Path) -> dict[Path, str]:
    """Each generated file → its content as the steps' settings make it now."""
    schema = updated_schema(json.loads((root / "nextflow_schema.json").read_text()))
    config, usage = root / "nextflow.config", root / "docs" / "usage.md"
    return {root / "nextflow_schema.json": json.dumps(schema, indent=4, ensure_ascii=False) + "\n",
            config: replace_between(config.read_text(), (BEGIN, END), render_params_block(schema), where=config),
            root / "conf" / "flags.config": render_flags_config(),
            usage: replace_between(usage.read_text(), (DOCS_BEGIN, DOCS_END), render_parameter_tables(schema),
                                   where=usage)}


def sync_config(root: Path, *, check: bool = False) -> list[Path]:
    """Write the generated files (or, with `check`, only list those that differ); the files that changed."""
    generated = generated_files(root)
    stale = [path for path, text in generated.items() if not path.exists() or path.read_text() != text]
    if not check:
        for path in stale:
            path.write_text(generated[path])
    return stale

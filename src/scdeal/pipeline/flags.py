"""Command-line flags generated from configuration dataclasses. Each setting is written once, as a field: its name is
the flag, its type the flag's type (a `Literal` gives the choices, a tuple of ints is written `256,128`, a bool
`true`/`false`), its default the flag's default, and `setting(default, help)` its help."""
from __future__ import annotations

import argparse
import typing
from dataclasses import Field, fields
from typing import Any, TypeVar

from ..model.device import check_device

__all__ = ["add_config_flags", "config_from_args", "device_flag", "int_tuple", "parse_bool"]

Config = TypeVar("Config")
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def add_config_flags(parser: argparse.ArgumentParser, config: type, prefix: str = "") -> None:
    """Add one `--<prefix><field>` flag per field of the dataclass `config`. A field whose flag the parser already has
    (a `seed` shared by two configurations) keeps that flag."""
    hints = typing.get_type_hints(config)
    taken = {action.dest for action in parser._actions}
    for field in fields(config):
        if prefix + field.name not in taken:
            parser.add_argument(f"--{prefix}{field.name}", **flag_options(field, hints[field.name]))


def flag_options(field: Field, hint: Any) -> dict[str, Any]:
    """The `add_argument` options of one field: type, choices, default and help."""
    options = {"default": field.default, "help": field.metadata.get("help", "").replace("%", "%%")}
    if typing.get_origin(hint) is typing.Literal:
        choices = typing.get_args(hint)
        return options | {"choices": choices, "type": type(choices[0])}
    if hint is bool:
        return options | {"type": parse_bool, "metavar": "{true,false}"}
    if typing.get_origin(hint) is tuple:
        return options | {"type": int_tuple, "metavar": "N[,N...]"}
    return options | {"type": hint}


def config_from_args(config: type[Config], args: argparse.Namespace, prefix: str = "") -> Config:
    """An instance of the dataclass `config` holding the parsed value of each of its flags (`--<prefix><field>`)."""
    return config(**{field.name: getattr(args, prefix + field.name) for field in fields(config)})


def parse_bool(text: str) -> bool:
    """`true`/`false` (also 1/0, yes/no, any case) as a bool."""
    value = str(text).strip().lower()
    if value not in TRUE + FALSE:
        raise argparse.ArgumentTypeError(f"'{text}' is not true or false")
    return value in TRUE


def int_tuple(text: str) -> tuple[int, ...]:
    """Comma-separated whole numbers (`256,128`) as a tuple."""
    try:
        values = tuple(int(part) for part in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not comma-separated whole numbers (e.g. 256,128)") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"'{text}': layer sizes must be at least 1")
    return values


def device_flag(text: str) -> str:
    """A `--device` value: auto, cpu, cuda or cuda:N (anything else is a usage error, not a traceback)."""
    try:
        return check_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None

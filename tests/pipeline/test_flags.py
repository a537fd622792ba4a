"""Each step's flags are generated from its configuration: one place per setting, checked values."""
from __future__ import annotations

import argparse
import typing
from dataclasses import fields

import numpy as np
import pytest

from scdeal.data.bulk import BulkPrepareConfig
from scdeal.data.simulate import SimParams
from scdeal.data.singlecell import ClusterConfig
from scdeal.model.training import BulkConfig, resample_training_lines
from scdeal.model.transfer import TransferConfig
from scdeal.pipeline import cli
from scdeal.pipeline.flags import add_config_flags, config_from_args, int_tuple, parse_bool
from scdeal.pipeline.steps import STEPS, bulk_prepare, bulk_pretrain, cluster, explain, transfer
from scdeal.tl.explain import ExplainConfig

STEP_CONFIGS = {bulk_prepare: BulkPrepareConfig, bulk_pretrain: BulkConfig, cluster: ClusterConfig,
                transfer: TransferConfig, explain: ExplainConfig}


@pytest.mark.parametrize("step", STEP_CONFIGS, ids=lambda m: m.NAME)
def test_every_setting_is_a_flag_with_its_default_type_and_help(step):
    config = STEP_CONFIGS[step]
    actions = {a.dest: a for a in step.build_parser()._actions}
    hints = typing.get_type_hints(config)
    for field in fields(config):
        action = actions[field.name]
        assert action.default == field.default and action.help, field.name
        if typing.get_origin(hints[field.name]) is typing.Literal:
            assert tuple(action.choices) == typing.get_args(hints[field.name]), field.name


@pytest.mark.parametrize("step", STEP_CONFIGS, ids=lambda m: m.NAME)
def test_defaults_build_the_default_configuration(step):
    parser = step.build_parser()
    required = [arg for a in parser._actions if a.required for arg in (a.option_strings[0], "x")]
    assert config_from_args(STEP_CONFIGS[step], parser.parse_args(required)) == STEP_CONFIGS[step]()


def test_values_are_parsed_to_the_field_types():
    parser = bulk_pretrain.build_parser()
    args = parser.parse_args(["--outdir", "o", "--bulk", "b", "--drug", "d", "--hidden_dims", "32,16",
                              "--noise", "0.1", "--batch_size", "32"])
    cfg = config_from_args(BulkConfig, args)
    assert cfg.hidden_dims == (32, 16) and cfg.noise == 0.1 and cfg.batch_size == 32
    args = transfer.build_parser().parse_args(["--outdir", "o", "--cells", "c", "--bulk", "b", "--model", "m",
                                               "--sample", "s", "--drug", "d", "--member_init", "pretrained"])
    assert config_from_args(TransferConfig, args).member_init == "pretrained"


@pytest.mark.parametrize(("step", "flag", "value", "message"), [
    (bulk_pretrain, "--imbalance", "oversample", "invalid choice: 'oversample'"),
    (bulk_pretrain, "--device", "cdua", "device must be one of auto, cpu, cuda or cuda:N, not 'cdua'"),
    (transfer, "--device", "gpu", "device must be one of auto, cpu, cuda or cuda:N, not 'gpu'"),
    (transfer, "--anchor_level", "cell", "invalid choice: 'cell'"),
    (bulk_pretrain, "--hidden_dims", "256;128", "not comma-separated whole numbers"),
])
def test_a_wrong_value_is_a_usage_error_not_a_traceback(capsys, step, flag, value, message):
    with pytest.raises(SystemExit) as exit_info:
        step.main(["--outdir", "o", flag, value])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err


def test_an_unknown_imbalance_is_refused_by_the_library_too():
    x, y, r = np.zeros((4, 2)), np.array([0, 0, 1, 1]), np.zeros(4)
    with pytest.raises(ValueError, match="unknown imbalance handling 'oversample'"):
        resample_training_lines(x, y, r, how="oversample", seed=0)


def test_flag_value_parsers():
    assert int_tuple("256,128") == (256, 128)
    assert parse_bool("True") is True and parse_bool("false") is False
    for parse, bad in ((int_tuple, "0,4"), (int_tuple, "a"), (parse_bool, "maybe")):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)


def test_simulate_takes_its_flags_from_the_simulation_parameters(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_config_flags(parser, SimParams)
    assert {a.dest for a in parser._actions} >= {f.name for f in fields(SimParams)}
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--outdir", str(tmp_path), "--species", "rat"])
    assert "invalid choice: 'rat'" in capsys.readouterr().err


def test_every_step_has_a_module():
    for name in STEPS:
        assert name == __import__(f"scdeal.pipeline.steps.{name}", fromlist=["main"]).NAME

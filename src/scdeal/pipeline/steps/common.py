"""What every step shares: its parser (outdir, threads, logging, debug, device, and the flags of its
configuration), error handling, and the thread limits."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Literal, get_args

from ...errors import EXIT_DATA_ERROR, InputError
from ...model.training import BulkConfig, load_checkpoint
from ..flags import add_config_flags, config_from_args, device_flag

__all__ = ["BULK_MODEL_SETTINGS", "EXIT_DATA_ERROR", "add_bulk_model_flags", "bulk_model_args", "configure",
           "limit_threads", "run_step", "step_main", "step_parser"]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
# the settings of the bulk model a step's ensemble members fit, as `--bulk_*` flags (a step_parser configuration)
BULK_MODEL_SETTINGS = (BulkConfig, "bulk_")


def step_parser(prog: str, description: str, *configs: type | tuple[type, str],
                device: bool = False) -> argparse.ArgumentParser:
    """The parser of one step (`prog`: its bin/ script; `description`: its module docstring): the options every
    step has (and `--device` if `device`), then one flag per field of each configuration dataclass of `configs`
    (`(config, prefix)`: flags `--<prefix><field>`, for a configuration whose names another one uses)."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--outdir", required=True, help="directory that receives this step's outputs")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: all available)")
    parser.add_argument("--log_level", default="INFO", choices=get_args(LogLevel), help="logging verbosity")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    if device:
        parser.add_argument("--device", default="auto", type=device_flag,
                            help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.configs = [config if isinstance(config, tuple) else (config, "") for config in configs]
    for config, prefix in parser.configs:  # the step's settings are their fields (pipeline/settings.py)
        add_config_flags(parser, config, prefix)
    return parser


def add_bulk_model_flags(parser: argparse.ArgumentParser, checkpoint: str) -> None:
    """`--model`: the pretrained `checkpoint`, read with --member_init pretrained only (the parser's
    BULK_MODEL_SETTINGS are the bulk model each member fits otherwise)."""
    parser.add_argument("--model", help=f"{checkpoint}: needed with --member_init pretrained; otherwise each member "
                                        "fits its own bulk model (the --bulk_* settings)")


def bulk_model_args(args: argparse.Namespace) -> dict:
    """The `model` and `bulk_config` arguments of `scdeal.tl.predict` and `screen` from the step's flags."""
    config, prefix = BULK_MODEL_SETTINGS
    return {"model": load_checkpoint(args.model) if args.model else None,
            "bulk_config": config_from_args(config, args, prefix)}


def configure(args: argparse.Namespace) -> None:
    """Logging at `--log_level` on stderr, and every thread pool at `--threads` (0: the cores available)."""
    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    limit_threads(args.threads or len(os.sched_getaffinity(0)))


def limit_threads(threads: int) -> None:
    """Every thread pool of the step (torch, BLAS/OpenMP, numba) at `threads`: a task uses the cores it
    was given (Nextflow's task.cpus) and no more, whatever the node has."""
    import numba
    import threadpoolctl
    import torch
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    # last, once torch and numba have loaded their OpenMP runtimes: BLAS (numpy, scipy, scikit-learn) and
    # OpenMP pools keep this limit for the whole step
    threadpoolctl.threadpool_limits(threads)


def run_step(name: str, parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], None], *,
             argv: list[str] | None = None) -> int:
    """Parse flags, run `body`; input errors print one clear message and exit 65 (traceback with --debug)."""
    args = parser.parse_args(argv)
    configure(args)
    try:
        body(args)
    except InputError as err:
        if args.debug:
            traceback.print_exc()
        print(f"ERROR [{name}]: {err}", file=sys.stderr)
        return EXIT_DATA_ERROR
    return 0


def step_main(name: str, build_parser: Callable[[], argparse.ArgumentParser],
              body: Callable[[argparse.Namespace], None]) -> Callable[..., int]:
    """A step's `main(argv=None)`: `run_step` with the parser `build_parser()` makes (None: the command line)."""
    return lambda argv=None: run_step(name, build_parser(), body, argv=argv)

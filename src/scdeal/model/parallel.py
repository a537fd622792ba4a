"""Independent jobs (an ensemble's members) side by side in forked processes on a CPU.

An epoch is a chain of small matrix products: two torch threads run one member only ~1.3 times as fast as one
thread. Members with one thread each, in processes of their own, use the cores ~1.5 times better. The jobs read
the parent's data through the fork (nothing is copied to start them); each returns its result pickled. On a GPU,
or with one thread, the jobs run here, in order.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import torch

__all__ = ["map_jobs", "worker_plan"]

T = TypeVar("T")
_JOB: Callable | None = None  # what a forked worker runs: set before the workers fork, inherited by them


def worker_plan(device: torch.device, n_jobs: int) -> tuple[int, int]:
    """Worker processes and torch threads per worker for `n_jobs` jobs: every job in a process of its own, the
    threads shared out between them, on a CPU with two threads or more; else one worker (the jobs run here)."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads < 2 or n_jobs < 2:
        return 1, threads
    return n_jobs, max(1, threads // n_jobs)


def map_jobs(job: Callable[[int], T], n_jobs: int, *, workers: int, threads: int) -> list[T]:
    """[job(0), …, job(n_jobs − 1)], in `workers` forked processes of `threads` torch threads each (one worker:
    here, in order). A job's exception is raised here."""
    global _JOB
    if workers <= 1:
        return [job(i) for i in range(n_jobs)]
    _JOB = job
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker,
                                 initargs=(threads,)) as pool:
            return [pickle.loads(result) for result in pool.map(_run_job, range(n_jobs))]
    finally:
        _JOB = None


def _start_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    os.environ["TQDM_DISABLE"] = "1"  # one progress bar per process would garble the terminal


def _run_job(index: int) -> bytes:
    # pickled here with the plain pickler: tensors travel by value, not as shared-memory handles
    return pickle.dumps(_JOB(index), protocol=pickle.HIGHEST_PROTOCOL)

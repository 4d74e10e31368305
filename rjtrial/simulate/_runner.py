"""Running batches of replicate trials: simulate, fit, and the backends that run them.

A *task* is one batch of replicate trials of one design (a scenario at one size and one
effect): :func:`run_batch` draws it (:func:`rjtrial.simulate._replicates.replicate_batch`)
and fits every trial at once with the library's batched engines
(:mod:`rjtrial.survival.batched`). Each trial's fit depends on its own data only, and each
batch on its own seed, so results are the same, to the last bit, whichever backend runs
the tasks and in which order: in this process, a local thread pool, or a Dask cluster.
:class:`Runner` keeps one backend open across many calls (the sample-size search runs
many) and shows a progress bar with an estimated time to completion.

Why threads, not processes: a batch's work is numpy's random draws and array arithmetic
and numba kernels compiled with ``nogil``, all of which release the GIL; the Python between
them is a few hundred calls a batch. Two threads run a batch each at once (measured: 40
batches of 250 trials of 600 take 5.2 s on one thread and 2.6 s on two), and a thread pool
has none of a process pool's costs: no processes to start, no imports or compiled kernels
to load again in each, no scenario and result to pickle (about 1.5 s of a 10,000-trial run).
"""

from __future__ import annotations

import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from rjtrial.errors import RjtrialError

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["ANALYSES", "Runner", "cpu_clock", "run_batch"]

ANALYSES = ("cox", "logrank", "rate_ratio")


def _rate_ratio_one(count, exposure, treatment) -> tuple[float, float, float]:
    """Log rate ratio, standard error and p-value of one trial by :func:`rjtrial.frequency.rate_ratio`."""
    import pandas as pd

    from rjtrial.frequency import rate_ratio

    rows = pd.DataFrame({"reoffences": count, "exposure_days": exposure, "treatment": treatment})
    try:
        fit = rate_ratio(rows, count="reoffences", exposure="exposure_days", group="treatment", control=0)
        row = fit.summary_frame().iloc[-1]
        return float(row["estimate"]), float(row["std_error"]), float(row["p_value"])
    except (ValueError, RjtrialError, np.linalg.LinAlgError):
        return math.nan, math.nan, math.nan


def fit(batch: Mapping[str, np.ndarray], analysis: str, threads: int | None) -> dict[str, np.ndarray]:
    """Per trial of a batch (columns of its ``(n, R)`` arrays): ``estimate`` (log scale),
    ``std_error, p_value, events, converged``."""
    from rjtrial.survival.batched import cox_batch, logrank_batch, negative_binomial_batch

    if analysis in ("cox", "logrank"):  # one row a trial
        time_at_risk = np.ascontiguousarray(batch["time_at_risk"].T)
        event = np.ascontiguousarray(batch["event"].T)
        treatment = np.ascontiguousarray(batch["treatment"].T)
    if analysis == "cox":
        hazards = cox_batch(time_at_risk, event, treatment, ties="efron", threads=threads)
        return {
            "estimate": hazards.estimate,
            "std_error": hazards.std_error,
            "p_value": hazards.p_value,
            "events": hazards.events.astype(float),
            "converged": hazards.converged,
        }
    if analysis == "logrank":
        test = logrank_batch(time_at_risk, event, treatment, threads=threads)
        with np.errstate(divide="ignore", invalid="ignore"):
            estimate = (test.observed - test.expected) / test.variance  # Peto's log hazard ratio of the treated arm
            std_error = 1.0 / np.sqrt(test.variance)
        return {
            "estimate": estimate,
            "std_error": std_error,
            "p_value": test.p_value,
            "events": test.events.astype(float),
            "converged": np.isfinite(test.p_value),
        }
    # the rows as they lie, (person, trial), labelled by trial: the fit takes rows in any order
    exposure, count, arm = batch["exposure_days"], batch["reoffences"], batch["treatment"]
    keep = exposure > 0  # participants with some street time
    trial = np.broadcast_to(np.arange(exposure.shape[1])[None, :], exposure.shape)
    res = negative_binomial_batch(count[keep], exposure[keep], arm[keep], trial=trial[keep], n_trials=exposure.shape[1])
    out = {
        "estimate": res.estimate.copy(),
        "std_error": res.std_error.copy(),
        "p_value": res.p_value.copy(),
        "events": np.where(keep, count, 0).sum(axis=0).astype(float),
        "converged": res.converged.copy(),
    }
    for k in np.flatnonzero(~res.converged):  # the few the batch could not fit: the reference, one by one
        mine = keep[:, k]
        estimate, std_error, p_value = _rate_ratio_one(count[mine, k], exposure[mine, k], arm[mine, k])
        out["estimate"][k], out["std_error"][k], out["p_value"][k] = estimate, std_error, p_value
        out["converged"][k] = math.isfinite(p_value)
    return out


def cpu_clock(threads: int | None):
    """The CPU clock of work run with ``threads``: this thread's (``time.thread_time``) when the
    work runs on this thread alone (``threads=1``, as in every pool thread, where the process's
    clock would count the other threads' batches too); else the process's, whose threads are
    all this work's (one batch at a time in this process, its fit threaded)."""
    return time.thread_time if threads == 1 else time.process_time


def run_batch(task: Mapping[str, Any]) -> dict[str, Any]:
    """Simulate and analyse one batch (the unit of work sent to a worker).

    ``task``: ``scenario`` (at its size and effect), ``seed`` (the batch's SeedSequence),
    ``replicates``, ``analysis``, ``threads`` and ``key`` (returned as it is, to place the
    result). Returns the per-trial results and the CPU seconds of ``generation``,
    ``followup`` and ``fitting`` (:func:`cpu_clock`).
    """
    from rjtrial.simulate._replicates import replicate_batch

    seconds = {"generation": 0.0, "followup": 0.0}
    batch = replicate_batch(task["scenario"], task["seed"], task["replicates"], seconds=seconds)
    clock = cpu_clock(task.get("threads"))
    started = clock()
    result = fit(batch, task["analysis"], task.get("threads"))
    seconds["fitting"] = clock() - started
    return {"key": task["key"], "seconds": seconds, **result}


class Runner:
    """Runs tasks on one backend, kept open until :meth:`close` (or the ``with`` block ends).

    ``workers`` 1 runs in this thread; more, a local pool of that many threads (see the
    module's note); ``scheduler`` (an address or a connected ``distributed.Client``) a Dask
    cluster. ``progress`` shows a tqdm bar on standard error.
    """

    def __init__(self, *, workers: int | None = None, scheduler=None, progress: bool = False, unit: str = "trial"):
        if scheduler is not None:
            self.backend, self.workers = "dask", None
        else:
            self.workers = int(workers) if workers else (os.cpu_count() or 1)
            self.backend = "in-process" if self.workers == 1 else "thread pool"
        self.scheduler = scheduler
        self.progress = progress
        self.unit = unit
        self._pool: ThreadPoolExecutor | None = None
        self._client: Any = None  # a distributed.Client (dask is imported only when used)
        self._own_client = False
        self._bar: tqdm[Any] | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._client is not None and self._own_client:
            self._client.close()
        self._client = None

    @property
    def threads(self) -> int | None:
        """Threads each fit may use: one per pool thread; all CPUs in this process."""
        return None if self.backend == "in-process" else 1

    # ------------------------------------------------------------------ progress
    def expect(self, trials: int, description: str | None = None) -> None:
        """Announce ``trials`` more trials to the progress bar (its total grows; ETA follows)."""
        if not self.progress:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=0, unit=self.unit, desc="power", file=sys.stderr, dynamic_ncols=True)
        bar = self._bar
        bar.total = (bar.total or 0) + int(trials)  # made with total=0
        if description:
            bar.set_description_str(description)
        bar.refresh()

    def _advance(self, trials: int) -> None:
        """Count ``trials`` done; the last batch is drawn once, by ``close()`` (an ``update``
        to the total and then ``close`` would print the 100% line twice in a log)."""
        bar = self._bar
        if bar is None:  # no progress bar shown
            return
        if bar.n + trials >= (bar.total or 0):  # the bar is made with total=0, then grown by expect()
            bar.n += trials
        else:
            bar.update(trials)

    # ------------------------------------------------------------------ running
    def run(self, tasks: list[dict]) -> list[dict]:
        """Results of ``tasks``, in the order given."""
        results = []
        for result in self._results(tasks):
            if self._bar is not None:
                self._advance(len(result["p_value"]))
            results.append(result)
        position = {t["key"]: i for i, t in enumerate(tasks)}  # keys are tuples of ints
        return sorted(results, key=lambda r: position[r["key"]])

    def _results(self, tasks: list[dict]) -> Iterable[dict]:
        if self.backend == "in-process" or len(tasks) == 0:
            for task in tasks:
                yield run_batch(task)
            return
        if self.backend == "thread pool":
            pool = self._thread_pool()
            futures = [pool.submit(run_batch, task) for task in tasks]
            try:
                for future in as_completed(futures):
                    yield future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            return
        client = self._dask_client()
        import distributed

        futures = [client.submit(run_batch, task, pure=False) for task in tasks]
        try:
            for future in distributed.as_completed(futures):
                yield future.result()
        except BaseException:
            client.cancel(futures)
            raise

    def _thread_pool(self):
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="rjtrial-power")
        return self._pool

    def _dask_client(self):
        if self._client is None:
            try:
                import distributed
            except ImportError:  # pragma: no cover - dask is a dependency
                raise RjtrialError("scheduler: running on a Dask cluster needs dask[distributed] installed") from None
            self._own_client = not isinstance(self.scheduler, distributed.Client)
            self._client = distributed.Client(self.scheduler, timeout="30s") if self._own_client else self.scheduler
        return self._client

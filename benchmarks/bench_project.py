"""Time project() on gpt3-175b and a sweep of 100 sparsity levels x 4 machines.

Run: python benchmarks/bench_project.py
Targets: project("gpt3-175b") under 50 ms; the sweep under 2 s. Both are
measured with the analytic wafer model (fidelity="analytic"), the engine
those targets were set for, and beside it with the default dataflow
simulator, whose own target (one gpt3-xl step under 100 ms) is checked by
benchmarks/bench_simulator.py. The first call builds and caches the step
graph, so it is timed apart from the rest.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

import spdf_sim

MACHINES = ["cs2-like", "cs3-like", "a100-80gb", "h100-sxm"]


def _time(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed calls of project() (default 10)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)

    rows = []
    for fidelity, targeted in (("analytic", True), ("simulated", False)):
        first = _time(lambda: spdf_sim.project("gpt3-175b", 0.75, fidelity=fidelity), 1)[0]
        times = _time(lambda: spdf_sim.project("gpt3-175b", 0.75, fidelity=fidelity), args.repeats)
        single = statistics.median(times)

        start = time.perf_counter()
        for sparsity in np.linspace(0.0, 0.95, 100):
            spdf_sim.project("gpt3-xl", float(sparsity), hw=MACHINES, reference_gpu=None,
                             fidelity=fidelity)
        sweep = time.perf_counter() - start

        rows += [
            (f"{fidelity}: project('gpt3-175b'), first call (builds the graph)", first, None),
            (f"{fidelity}: project('gpt3-175b'), median of {args.repeats}", single,
             0.050 if targeted else None),
            (f"{fidelity}: sweep, 100 sparsities x {len(MACHINES)} machines (gpt3-xl)", sweep,
             2.0 if targeted else None),
        ]
    failed = False
    for label, seconds, target in rows:
        verdict = ""
        if target is not None:
            ok = seconds <= target
            failed |= not ok
            verdict = f"target {target * 1000:.0f} ms, {seconds / target:.2f} of target: {'PASS' if ok else 'FAIL'}"
        print(f"{label:<70} {seconds * 1000:9.1f} ms  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

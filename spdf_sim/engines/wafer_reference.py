"""A slow, exact event simulation of one weight op on a small mesh, to check the fast model.

Every streamed non-zero, every fabric hop and every AXPY is an event. What is
simulated, in cycles:

- the stream: non-zeros leave the source in order (output by output),
  evenly paced at the I/O rate. The source has no buffer, so a non-zero whose
  column cannot take it blocks the ones behind it;
- each column is a chain of routers with a one-slot buffer each; a router
  hands its non-zero to its core's queue (at most ``core_queue_depth``
  waiting) and forwards it one hop down, and frees its slot when both are done;
- each core runs its queue in order, one AXPY of ceil(tokens_row / simd) +
  overhead cycles per non-zero;
- partial sums hop along their row to the column that holds the output in
  the next layer (forward and activation gradient), or down their column to
  the bottom row (weight gradient). These hops do not contend for links.

Meant for meshes of up to 16 x 16 cores and a few thousand non-zeros.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from hwmodels import MachineDescription
from spdf_sim.engines.mesh import slice_bounds
from spdf_sim.engines.wafer_sim import axpy_cycles, fixed_latency_cycles
from spdf_sim.errors import SpdfSimError

MAX_MESH = 16


@dataclass(frozen=True)
class ReferenceResult:
    """The event simulation of one op: its cycles, each core's busy cycles, and how many events ran."""

    cycles: float
    busy: np.ndarray
    events: int
    source_stall_cycles: float


def stream_order(mask: np.ndarray, pass_: str) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Return (output, read feature) per streamed non-zero, output by output, and both feature counts.

    The forward and weight-gradient ops read input features (mask columns) and
    produce outputs (mask rows); the activation gradient reads Wᵀ, so the roles swap.
    """
    if pass_ not in ("fwd", "dgrad", "wgrad"):
        raise SpdfSimError(f"pass {pass_!r} is invalid: give fwd, dgrad or wgrad")
    oriented = mask.T if pass_ == "dgrad" else mask
    outputs, features = np.nonzero(oriented)  # row-major: output by output
    return outputs, features, oriented.shape[0], oriented.shape[1]


def simulate_op(machine: MachineDescription, mask: np.ndarray, pass_: str, tokens: int,
                stream_bytes: float) -> ReferenceResult:
    """Simulate one weight op event by event and return when its last result lands."""
    rows, cols = int(machine["mesh_rows"]), int(machine["mesh_cols"])
    if not (1 <= rows <= MAX_MESH and 1 <= cols <= MAX_MESH):
        raise SpdfSimError(f"mesh {rows} x {cols} is out of range for the reference simulator: "
                           f"give at most {MAX_MESH} x {MAX_MESH} cores")
    sim = _EventSim(machine, mask, pass_, tokens, stream_bytes)
    return sim.run()


class _EventSim:
    """State of one op's event simulation; ``run`` drains the event queue."""

    def __init__(self, machine: MachineDescription, mask: np.ndarray, pass_: str, tokens: int,
                 stream_bytes: float) -> None:
        self.machine = machine
        self.rows, self.cols = int(machine["mesh_rows"]), int(machine["mesh_cols"])
        self.hop = float(machine["hop_cycles"])
        self.depth = int(machine["core_queue_depth"])
        self.pass_ = pass_
        outputs, features, n_outputs, n_features = stream_order(mask, pass_)
        self.outputs = outputs
        self.column = np.searchsorted(slice_bounds(n_features, self.cols), features, side="right") - 1
        self.destination = np.searchsorted(slice_bounds(n_outputs, self.cols),
                                           np.arange(n_outputs), side="right") - 1

        # Rows hold floor or ceil of tokens / rows; the first rows take the remainder.
        row_tokens = np.full(self.rows, tokens // self.rows) + (np.arange(self.rows) < tokens % self.rows)
        self.axpy = [axpy_cycles(machine, int(t)) for t in row_tokens]
        bytes_per_cycle = machine["io_bandwidth"] / machine["clock_hz"]
        period = stream_bytes / bytes_per_cycle / max(1, len(outputs))
        self.available = period * np.arange(1, len(outputs) + 1)

        # Remaining AXPYs per (column, output) on each row; rows see the same items.
        self.remaining = {}
        for column, output in zip(self.column.tolist(), outputs.tolist()):
            self.remaining[(column, output)] = self.remaining.get((column, output), 0) + 1
        self.left = [dict(self.remaining) for _ in range(self.rows)]

        self.slot = [[None] * self.cols for _ in range(self.rows)]  # [item, deposited, forwarded]
        self.queue = [[deque() for _ in range(self.cols)] for _ in range(self.rows)]
        self.core_busy_until = np.zeros((self.rows, self.cols))
        self.busy = np.zeros((self.rows, self.cols))
        self.running = np.zeros((self.rows, self.cols), dtype=bool)
        self.events: list = []
        self.sequence = 0
        self.next_item = 0
        self.source_waiting = False
        self.source_stall = 0.0
        self.finish = 0.0
        self.count = 0

    def push(self, time: float, kind: str, *args) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (time, self.sequence, kind, args))

    def run(self) -> ReferenceResult:
        self.push(self.available[0] if len(self.available) else 0.0, "source")
        while self.events:
            time, _, kind, args = heapq.heappop(self.events)
            self.count += 1
            self.finish = max(self.finish, time)
            getattr(self, "_on_" + kind)(time, *args)
        if self.next_item < len(self.outputs):
            raise SpdfSimError("reference simulation deadlocked: a non-zero never left the source")
        # With nothing to stream the op still pays its fill and drain across the mesh.
        return ReferenceResult(cycles=self._finish_cycles(), busy=self.busy, events=self.count,
                               source_stall_cycles=self.source_stall)

    def _finish_cycles(self) -> float:
        if len(self.outputs):
            return self.finish
        return fixed_latency_cycles(self.machine, self.pass_)

    # The stream source: one non-zero at a time, in order, no buffer.
    def _on_source(self, time: float) -> None:
        self.source_waiting = False
        while self.next_item < len(self.outputs):
            item = self.next_item
            if time < self.available[item]:
                self.push(self.available[item], "source")
                return
            column = int(self.column[item])
            if self.slot[0][column] is not None:
                self.source_waiting = True  # woken when router (0, column) frees its slot
                self._stalled_since = time
                return
            self.slot[0][column] = [item, False, False]
            self.push(time + self.hop, "arrive", 0, column)
            self.next_item += 1

    def _on_arrive(self, time: float, row: int, column: int) -> None:
        self._try_router(time, row, column)

    def _try_router(self, time: float, row: int, column: int) -> None:
        state = self.slot[row][column]
        if state is None:
            return
        item, deposited, forwarded = state
        if not deposited and len(self.queue[row][column]) < self.depth:
            self.queue[row][column].append(item)
            state[1] = deposited = True
            self._start_axpy(time, row, column)
        if not forwarded and row + 1 < self.rows and self.slot[row + 1][column] is None:
            self.slot[row + 1][column] = [item, False, False]
            self.push(time + self.hop, "arrive", row + 1, column)
            state[2] = forwarded = True
        if row + 1 == self.rows:
            state[2] = forwarded = True
        if deposited and forwarded:
            self.slot[row][column] = None
            self._slot_freed(time, row, column)

    def _slot_freed(self, time: float, row: int, column: int) -> None:
        if row > 0:
            self._try_router(time, row - 1, column)
        elif self.source_waiting:
            self.source_stall += time - self._stalled_since
            self._on_source(time)

    def _start_axpy(self, time: float, row: int, column: int) -> None:
        if self.running[row, column] or not self.queue[row][column]:
            return
        item = self.queue[row][column].popleft()
        self.running[row, column] = True
        cycles = self.axpy[row]
        self.busy[row, column] += cycles
        self.push(time + cycles, "axpy_done", row, column, item)
        self._try_router(time, row, column)  # the queue has room again

    def _on_axpy_done(self, time: float, row: int, column: int, item: int) -> None:
        self.running[row, column] = False
        output = int(self.outputs[item])
        key = (column, output)
        self.left[row][key] -= 1
        if self.pass_ == "wgrad":
            # Each weight gradient's partial dot products meet at the bottom row.
            if row + 1 < self.rows:
                self.push(time + self.hop, "partial_down", row + 1, column)
        elif self.left[row][key] == 0:
            self._send_partial(time, row, column, int(self.destination[output]))
        self._start_axpy(time, row, column)

    def _send_partial(self, time: float, row: int, column: int, destination: int) -> None:
        if column != destination:
            step = 1 if destination > column else -1
            self.push(time + self.hop, "partial_along", row, column + step, destination)

    def _on_partial_along(self, time: float, row: int, column: int, destination: int) -> None:
        self._send_partial(time, row, column, destination)

    def _on_partial_down(self, time: float, row: int, column: int) -> None:
        if row + 1 < self.rows:
            self.push(time + self.hop, "partial_down", row + 1, column)


def reference_cycles(machine: MachineDescription, mask: np.ndarray, pass_: str, tokens: int,
                     stream_bytes: float) -> float:
    """Return the cycles of one weight op from the event simulation."""
    return simulate_op(machine, mask, pass_, tokens, stream_bytes).cycles


def tokens_per_row(machine: MachineDescription, tokens: int) -> int:
    """Return the tokens of the busiest core row, as the fast model uses them."""
    return math.ceil(tokens / machine["mesh_rows"])

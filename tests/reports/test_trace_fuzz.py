"""Fuzzing the trace reader: damaged run directories give data or SpdfSimError, nothing else."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spdf_sim.errors import SpdfSimError
from spdf_sim.runs import project_run, read_run
from spdf_sim.runs.records import MASK_DIR, TRACE_FILE


def damage_files(run_dir: Path) -> list[Path]:
    return [run_dir / TRACE_FILE, *sorted((run_dir / MASK_DIR).iterdir())]


truncation = st.tuples(st.just("truncate"), st.integers(0, 50), st.floats(0.0, 1.0))
byte_flip = st.tuples(st.just("flip"), st.integers(0, 50), st.floats(0.0, 1.0),
                      st.integers(1, 255))
deletion = st.tuples(st.just("delete"), st.integers(0, 50))
damages = st.lists(st.one_of(truncation, byte_flip, deletion), min_size=1, max_size=4)


def apply(run_dir: Path, damage: tuple) -> None:
    files = [path for path in damage_files(run_dir) if path.exists()]
    if not files:
        return
    target = files[damage[1] % len(files)]
    if damage[0] == "delete":
        target.unlink()
        return
    data = bytearray(target.read_bytes())
    offset = int(damage[2] * len(data))
    if damage[0] == "truncate":
        target.write_bytes(bytes(data[:offset]))
    elif data:
        data[min(offset, len(data) - 1)] ^= damage[3]
        target.write_bytes(bytes(data))


@contextlib.contextmanager
def quiet_reader():
    """Silence the torn-record warnings that most examples trigger, restoring the level after."""
    logger = logging.getLogger("spdf_sim.runs")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damages)
def test_damage_gives_data_or_error(tiny_runs, damages):
    with quiet_reader(), tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        shutil.copytree(tiny_runs["sparse"], run_dir)
        for damage in damages:
            apply(run_dir, damage)
        try:
            run = read_run(run_dir)
            run.load_masks()
            projection = project_run(run_dir, hw="ideal", reference_gpu=None, run=run)
        except SpdfSimError as error:
            assert str(error)
            return
        assert projection.pretrain_flops >= 0

"""What the step runs on: machine descriptions as data, each number with its source.

A machine is a JSON file in ``machines/`` (or any path a user gives). This
package only reads descriptions; the timing engines live in spdf_sim. It never
imports spdf_sim or workloads.
"""

from hwmodels.description import (
    MachineDescription, MachineError, available, load, load_file,
)

__all__ = ["MachineDescription", "MachineError", "available", "load", "load_file"]

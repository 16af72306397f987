"""Fine-tuning tasks: readers for E2E, WebNLG and DART, and ``load_task`` by name and split."""

from workloads.tasks.dart import read_dart
from workloads.tasks.e2e import read_e2e
from workloads.tasks.example import TRIPLE_SEPARATOR, Example, linearise_triples
from workloads.tasks.registry import DATA_ROOT_VARIABLE, TASKS, load_task, task_path
from workloads.tasks.webnlg import read_webnlg

__all__ = [
    "DATA_ROOT_VARIABLE", "TASKS", "TRIPLE_SEPARATOR", "Example", "linearise_triples",
    "load_task", "read_dart", "read_e2e", "read_webnlg", "task_path",
]

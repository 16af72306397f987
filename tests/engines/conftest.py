"""Engine tests import their shared builders from engine_helpers next to this file."""

import sys
from pathlib import Path

# The suite runs with --import-mode=importlib, which leaves sys.path alone.
sys.path.insert(0, str(Path(__file__).parent))

"""The error workloads raises for invalid model shapes, names and plans."""


class WorkloadError(ValueError):
    """An invalid model shape or name. spdf_sim re-raises it as SpdfSimError."""

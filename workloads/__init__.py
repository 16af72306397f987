"""What is trained: model shapes, the op graph of a training step, recipes and tasks.

This package never imports spdf_sim or hwmodels.
"""

from workloads.errors import WorkloadError
from workloads.graph import (
    SPDF_SPARSE_GLOBS, Param, build_step_graph, count_parameters, match_weights, parameters,
    sparse_weights,
)
from workloads.models import (
    CHINCHILLA_TOKENS_PER_PARAM, PRESETS, LinearSpec, ModelConfig, chinchilla_tokens,
    from_hf_config, from_torch_module, get_preset,
)

__all__ = [
    "CHINCHILLA_TOKENS_PER_PARAM", "PRESETS", "SPDF_SPARSE_GLOBS", "LinearSpec", "ModelConfig",
    "Param", "WorkloadError", "build_step_graph", "chinchilla_tokens", "count_parameters",
    "from_hf_config", "from_torch_module", "get_preset", "match_weights", "parameters",
    "sparse_weights",
]

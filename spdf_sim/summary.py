"""The plain-text summary of a Projection."""

from __future__ import annotations


def _seconds(value: float) -> str:
    if value >= 86400:
        return f"{value / 86400:.1f} d"
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    return f"{value:.3g} s"


def _micro_batches(projection, details: dict) -> str:
    """Describe the micro-batches of a step, including a smaller last one."""
    sequences = projection.tokens_per_step // projection.model.context
    micro = details["micro_batch"]
    full, rest = divmod(sequences, micro)
    split = f"{full} x {micro} sequences" + (f" + 1 x {rest}" if rest else "")
    per_row = details.get("tokens_per_core_row")
    row_text = f", {per_row:.0f} tokens per core row" if per_row else ""
    return f"micro-batches: {split} per step of {sequences}{row_text}"


def _bounds(bounds: dict[str, str]) -> str:
    """Name what bounds the weight matmuls first, then the other op kinds grouped by bound."""
    weight = bounds.get("matmul")
    others: dict[str, list[str]] = {}
    for kind, bound in sorted(bounds.items()):
        if kind != "matmul":
            others.setdefault(bound, []).append(kind)
    rest = "; ".join(f"{bound}: {', '.join(kinds)}" for bound, kinds in others.items())
    head = f"weight matmuls bound by {weight}" if weight else "no weight matmuls"
    return f"{head}; other ops by {rest}" if rest else head


def format_summary(projection) -> str:
    """Format the headline numbers of a projection as a few aligned lines."""
    p = projection
    lines = [
        f"{p.model.name}: {p.plan.description}; convention {p.convention.name}",
        f"  parameters      {p.params_total:,} total, {p.params_nonzero:,} non-zero "
        f"({p.params_total / p.params_nonzero:.2f}x fewer)",
        f"  forward/token   {p.dense_forward_flops_per_token:.4g} dense, "
        f"{p.forward_flops_per_token:.4g} sparse "
        f"({p.dense_forward_flops_per_token / p.forward_flops_per_token:.2f}x)",
        f"  pre-training    {p.tokens:.4g} tokens: {p.dense_pretrain_flops:.4g} FLOPs dense, "
        f"{p.pretrain_flops:.4g} sparse ({p.pretrain_reduction:.2f}x fewer)",
        f"  fine-tuning     {p.finetune_tokens:.4g} tokens dense: {p.finetune_flops:.4g} FLOPs; "
        f"total reduction {p.total_reduction:.2f}x",
    ]
    for name, result in p.hardware.items():
        versus = p.speedup_vs_gpu(name)
        gpu = f", {versus:.2f}x vs {p.reference_gpu} dense" if versus and name != p.reference_gpu else ""
        lines.append(
            f"  {name:<15} pre-train {_seconds(result.pretrain_s)} sparse vs "
            f"{_seconds(result.dense_pretrain_s)} dense: {result.speedup:.2f}x{gpu}")
        details = result.timing.details
        if "micro_batch" in details:
            lines.append(f"  {'':<15} {_micro_batches(p, details)}")
        if details.get("mask_source"):
            lines.append(f"  {'':<15} per-core work from {details['mask_source']}")
        bounds = result.timing.bound_by_kind()
        if bounds and result.kind == "wafer":
            lines.append(f"  {'':<15} {_bounds(bounds)}")
    lines.append("assumptions:")
    lines += [f"  - {line}" for line in p.assumptions]
    return "\n".join(lines)

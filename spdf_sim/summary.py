"""The plain-text summary of a Projection."""

from __future__ import annotations


def _seconds(value: float) -> str:
    if value >= 86400:
        return f"{value / 86400:.1f} d"
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    return f"{value:.3g} s"


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
            per_row = details.get("tokens_per_core_row")
            row_text = f", {per_row:.0f} tokens per core row" if per_row else ""
            lines.append(f"  {'':<15} micro-batch {details['micro_batch']} sequences x "
                         f"{details.get('micro_batches', '?')} per step{row_text}")
        if details.get("mask_source"):
            lines.append(f"  {'':<15} per-core work from {details['mask_source']}")
        bounds = result.timing.bound_by_kind()
        if bounds and result.kind == "wafer":
            lines.append(f"  {'':<15} bound by: " + ", ".join(f"{k} {v}" for k, v in sorted(bounds.items())))
    lines.append("assumptions:")
    lines += [f"  - {line}" for line in p.assumptions]
    return "\n".join(lines)

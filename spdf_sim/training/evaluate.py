"""Text generation (greedy and beam search) and corpus BLEU against all references.

``model(idx)`` must return logits of shape [batch, seq, vocab], or a tuple
whose first item is those logits (as the package's GPT does). Generation runs
without a KV cache, re-reading the whole sequence each step: simple, and fast
enough for the short E2E, WebNLG and DART targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import sacrebleu
import torch

from spdf_sim.errors import SpdfSimError
from spdf_sim.training.data import prompt_ids
from workloads.tasks import Example


def generate(model, tokenizer, prompts: Sequence[str | Sequence[int]], max_new_tokens: int,
             beam_size: int = 1, batch_size: int = 32, length_penalty: float = 1.0,
             context: int | None = None) -> list[str]:
    """Continue each prompt and return the decoded new text, without the EOS that ended it.

    A prompt is a string (encoded as is) or a list of token ids. ``beam_size`` 1
    decodes greedily, ``batch_size`` prompts at a time. A larger beam searches
    one prompt at a time and ranks finished beams by their total log-probability
    divided by length ** ``length_penalty``. Generation stops at EOS, after
    ``max_new_tokens``, or when the sequence fills ``context`` (default: the
    model's ``config.context``).
    """
    if beam_size < 1 or max_new_tokens < 1:
        raise SpdfSimError(f"beam_size {beam_size} and max_new_tokens {max_new_tokens} must "
                           f"both be >= 1")
    context = context or getattr(getattr(model, "config", None), "context", None)
    if not context:
        raise SpdfSimError("the model has no config.context: pass context, the maximum "
                           "sequence length the model accepts")
    encoded = [tokenizer.encode(p) if isinstance(p, str) else list(p) for p in prompts]
    for number, ids in enumerate(encoded):
        if not 0 < len(ids) < context:
            raise SpdfSimError(f"prompt {number} has {len(ids)} tokens: give 1 to "
                               f"{context - 1} tokens so there is room to generate")

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if beam_size == 1:
                outputs = []
                for start in range(0, len(encoded), batch_size):
                    outputs += _greedy(model, encoded[start:start + batch_size], tokenizer.eos_id,
                                       max_new_tokens, context)
            else:
                outputs = [_beam(model, ids, tokenizer.eos_id, max_new_tokens, context,
                                 beam_size, length_penalty) for ids in encoded]
    finally:
        model.train(was_training)
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in outputs]


def _logits(model, idx: torch.Tensor) -> torch.Tensor:
    output = model(idx)
    return output[0] if isinstance(output, tuple) else output


def _greedy(model, prompts: list[list[int]], eos_id: int, max_new_tokens: int,
            context: int) -> list[list[int]]:
    """Greedy decoding of right-padded prompts of different lengths in one batch.

    Each row's next token is read at its own last position. Padding sits only
    after that position, and causal attention never looks ahead, so a row's
    result equals decoding it alone.
    """
    lengths = torch.tensor([len(ids) for ids in prompts])
    end = min(int(lengths.max()) + max_new_tokens, context)
    idx = torch.full((len(prompts), end), eos_id, dtype=torch.long)
    for row, ids in enumerate(prompts):
        idx[row, :len(ids)] = torch.tensor(ids)
    new_tokens: list[list[int]] = [[] for _ in prompts]
    active = torch.ones(len(prompts), dtype=torch.bool)
    rows = torch.arange(len(prompts))

    for _ in range(max_new_tokens):
        active &= lengths < end
        if not active.any():
            break
        width = int(lengths[active].max())
        logits = _logits(model, idx[:, :width])
        # Finished rows may be longer than width; clamping keeps their (unused) index valid.
        next_tokens = logits[rows, (lengths - 1).clamp(max=width - 1)].argmax(dim=-1)
        for row in rows[active].tolist():
            token = int(next_tokens[row])
            if token == eos_id:
                active[row] = False
                continue
            idx[row, lengths[row]] = token
            new_tokens[row].append(token)
            lengths[row] += 1
    return new_tokens


def _beam(model, prompt: list[int], eos_id: int, max_new_tokens: int, context: int,
          beam_size: int, length_penalty: float) -> list[int]:
    """Beam search for one prompt; returns the best hypothesis's new tokens."""
    beams = torch.tensor([prompt], dtype=torch.long)
    scores = torch.zeros(1)
    finished: list[tuple[float, list[int]]] = []

    def ranked(score: float, length: int) -> float:
        return score / max(length, 1) ** length_penalty

    for step in range(min(max_new_tokens, context - len(prompt))):
        log_probs = torch.log_softmax(_logits(model, beams)[:, -1].float(), dim=-1)
        candidates = (scores[:, None] + log_probs).flatten()
        top_scores, top = candidates.topk(min(2 * beam_size, len(candidates)))
        vocab = log_probs.shape[-1]
        keep_rows, keep_tokens, keep_scores = [], [], []
        for score, flat in zip(top_scores.tolist(), top.tolist()):
            row, token = divmod(flat, vocab)
            if token == eos_id:
                finished.append((ranked(score, step + 1), beams[row, len(prompt):].tolist()))
            else:
                keep_rows.append(row)
                keep_tokens.append(token)
                keep_scores.append(score)
            if len(keep_rows) == beam_size or len(finished) >= beam_size:
                break
        if len(finished) >= beam_size or not keep_rows:
            break
        beams = torch.cat([beams[keep_rows], torch.tensor(keep_tokens)[:, None]], dim=1)
        scores = torch.tensor(keep_scores)

    if len(finished) < beam_size:
        # Beams cut off by max_new_tokens or the context compete unfinished.
        for score, row in zip(scores.tolist(), beams):
            finished.append((ranked(score, len(row) - len(prompt)), row[len(prompt):].tolist()))
    return max(finished, key=lambda item: item[0])[1]


def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Return corpus BLEU (sacrebleu defaults) of ``hypotheses`` against all references of each input.

    sacrebleu takes reference streams of equal length, so a shorter reference
    list is padded by repeating its own first reference. That leaves BLEU
    unchanged: n-gram counts are clipped by their maximum over references and
    the brevity penalty uses the closest reference length, and a repeat changes
    neither. (sacrebleu 2.x also skips None references, which gives the same
    score. An empty string would count as a reference of length 0 and change the
    brevity penalty.)
    """
    if len(hypotheses) != len(references):
        raise SpdfSimError(f"{len(hypotheses)} hypotheses but {len(references)} reference "
                           f"lists: give one reference list per hypothesis")
    for number, refs in enumerate(references):
        if isinstance(refs, str) or not refs:
            raise SpdfSimError(f"input {number} has reference list {refs!r}: give a list of "
                               f"one or more reference strings per hypothesis")
    streams = max(len(refs) for refs in references)
    padded = [list(refs) + [refs[0]] * (streams - len(refs)) for refs in references]
    reference_streams = [[refs[i] for refs in padded] for i in range(streams)]
    return sacrebleu.corpus_bleu(list(hypotheses), reference_streams).score


def score_examples(model, tokenizer, examples: Sequence[Example], max_new_tokens: int,
                   beam_size: int = 1, batch_size: int = 32) -> tuple[float, list[str]]:
    """Generate for every example's ``source + SEP`` prompt and return (BLEU, hypotheses)."""
    prompts = [prompt_ids(tokenizer, example.source) for example in examples]
    hypotheses = generate(model, tokenizer, prompts, max_new_tokens, beam_size, batch_size)
    return bleu(hypotheses, [example.references for example in examples]), hypotheses

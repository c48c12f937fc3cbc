"""Scoring (response, criterion) pairs with a reward model: batched naive scoring and prefix-shared scoring.

Naive: every (instruction, response, criterion) input is a full sequence; sequences are sorted by length and run
in right-padded batches. This is the reference, and what an encoder backbone always uses.

Prefix-shared (decoder backbones): the template puts the criterion last, so for one response the K inputs share
the instruction+response prefix token for token (see ``template.Encoder``). The prefix runs once with
``use_cache=True``; its KV cache is copied and expanded to the K criterion suffixes, which run as one right-padded
batch with position ids continuing after the prefix; the score head reads each suffix's last real token, the same
token ``AutoModelForSequenceClassification`` reads in a full pass. Results equal naive scoring within float
rounding (tested to 1e-4). Encoders attend in both directions, so the response's representation depends on the
criterion and nothing can be shared exactly: for them the shared path falls back to batched naive scoring.

Long responses (input scheme ``windows/1``, ``promedical.reward.windows``): a response gives one prefix per
window; both paths score every (window, criterion) input and pool the window scores per criterion (max of met
evidence: max for required, min for prohibited; mean for the implicit template). The shared path runs each
window's prefix once and reuses it for the K suffixes, so sharing still saves K-1 prefix passes per window;
naive and shared stay equal within float rounding. ``head/1`` models have exactly one window (the head).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from promedical.reward.head import apply
from promedical.reward.inputs import Group
from promedical.reward.model import RewardModel
from promedical.reward.windows import Windowed, pool, pool_kind


def _padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[object, object]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def score_ids(rm: RewardModel, sequences: Sequence[Sequence[int]], batch_size: int = 16) -> list[float]:
    """Scores of full token sequences, batched by length (the naive reference path)."""
    import torch

    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    out = [0.0] * len(sequences)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids, mask = _padded([sequences[i] for i in chunk], rm.tokenizer.pad_token_id)
            logits = rm.model(input_ids=ids, attention_mask=mask).logits.squeeze(-1).float()
            for index, value in zip(chunk, logits.tolist(), strict=True):
                out[index] = float(value)
    return out


@dataclass(frozen=True, slots=True)
class GroupScores:
    """One response's pooled score per criterion, and how it was read (windows, truncation)."""

    scores: list[float]
    windowed: Windowed


def _pooled(rm: RewardModel, group: Group, per_window: Sequence[Sequence[float]]) -> list[float]:
    """Window scores (``per_window[w][k]``) pooled per criterion ``k`` (``windows.pool_kind``)."""
    explicit = rm.card.explicit
    return [pool([row[k] for row in per_window], pool_kind(c.polarity, explicit))
            for k, c in enumerate(group.criteria)]


def naive_sequences(rm: RewardModel, groups: Sequence[Group]) -> tuple[list[list[int]], list[Windowed]]:
    """Every (window, criterion) input in order: group, then window, then criterion."""
    enc = rm.encoder
    seqs: list[list[int]] = []
    windowed = []
    for g in groups:
        w = enc.prefixes(g.instruction, g.response)
        windowed.append(w)
        suffixes = [enc.suffix(c.text, c.tier, c.polarity) for c in g.criteria]
        seqs.extend([*prefix, *suffix] for prefix in w.prefixes for suffix in suffixes)
    return seqs, windowed


def score_groups_naive(rm: RewardModel, groups: Sequence[Group], batch_size: int = 16) -> list[GroupScores]:
    seqs, windowed = naive_sequences(rm, groups)
    flat = score_ids(rm, seqs, batch_size)
    out, at = [], 0
    for g, w in zip(groups, windowed, strict=True):
        k = len(g.criteria)
        per_window = [flat[at + i * k : at + (i + 1) * k] for i in range(len(w.prefixes))]
        at += k * len(w.prefixes)
        out.append(GroupScores(_pooled(rm, g, per_window) if k else [], w))
    return out


def score_naive(rm: RewardModel, groups: Sequence[Group], batch_size: int = 16) -> list[list[float]]:
    return [g.scores for g in score_groups_naive(rm, groups, batch_size)]


def _score_group_shared(rm: RewardModel, group: Group, batch_size: int) -> GroupScores:
    enc = rm.encoder
    w = enc.prefixes(group.instruction, group.response)
    suffixes = [enc.suffix(c.text, c.tier, c.polarity) for c in group.criteria]
    if not suffixes:
        return GroupScores([], w)
    per_window = [_score_prefix_shared(rm, list(prefix), suffixes, batch_size) for prefix in w.prefixes]
    return GroupScores(_pooled(rm, group, per_window), w)


def _score_prefix_shared(rm: RewardModel, prefix: list[int], suffixes: Sequence[Sequence[int]],
                         batch_size: int) -> list[float]:
    import torch

    model = rm.model
    base = getattr(model, model.base_model_prefix)
    scores: list[float] = []
    with torch.inference_mode():
        prefix_ids = torch.tensor([prefix], dtype=torch.long)
        # The prefix runs once through the base model (no score head: only its KV cache is needed).
        cache = base(input_ids=prefix_ids, use_cache=True).past_key_values
        for start in range(0, len(suffixes), batch_size):
            chunk = suffixes[start : start + batch_size]
            ids, mask = _padded(chunk, rm.tokenizer.pad_token_id)
            k, width = ids.shape  # type: ignore[attr-defined]
            shared = copy.deepcopy(cache)  # the forward below appends to the cache: keep the prefix pristine
            shared.batch_repeat_interleave(k)
            # The prefix has no padding, so it is all ones; the suffixes are right-padded, and under causal attention
            # no real token sees the pads after it, so each suffix reads exactly what its full sequence would.
            attention = torch.cat([torch.ones((k, len(prefix)), dtype=torch.long), mask], dim=1)  # type: ignore[list-item]
            # Positions continue after the prefix as in one full pass (rotary embeddings depend on them).
            positions = (torch.arange(width, dtype=torch.long) + len(prefix)).unsqueeze(0).expand(k, -1)
            hidden = base(
                input_ids=ids, attention_mask=attention, position_ids=positions, past_key_values=shared, use_cache=True
            ).last_hidden_state
            # The score head reads each row's last real token, the token a sequence-classification model reads.
            last = torch.tensor([len(s) - 1 for s in chunk], dtype=torch.long)
            values = model.score(hidden[torch.arange(k), last]).squeeze(-1).float()
            scores.extend(float(v) for v in values.tolist())
    return scores


def score_groups(rm: RewardModel, groups: Sequence[Group], batch_size: int = 16) -> list[GroupScores]:
    """Per group, one pooled score per criterion and its windows; prefix-shared for decoders, batched naive for
    encoders; then the evidence head when the checkpoint has one (``promedical.reward.head``)."""
    if not rm.decoder:
        raw = score_groups_naive(rm, groups, batch_size)
    else:
        raw = [_score_group_shared(rm, g, batch_size) for g in groups]
    if rm.evidence is None:
        return raw
    final = apply(rm.evidence, groups, [r.scores for r in raw])
    return [GroupScores(scores, r.windowed) for scores, r in zip(final, raw, strict=True)]


def score_shared(rm: RewardModel, groups: Sequence[Group], batch_size: int = 16) -> list[list[float]]:
    """Per group, one score per criterion; prefix-shared for decoders, batched naive for encoders."""
    return [g.scores for g in score_groups(rm, groups, batch_size)]

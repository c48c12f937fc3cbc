"""The reward model as a judge backend: per-criterion scores -> met/unmet verdicts -> S1, S2, S3 and the reward.

``load_rm_judge(path)`` (what ``load_judge("rm:<checkpoint>")`` calls) returns an ``RMJudge``. For each
(rubric, response) it scores every criterion in one prefix-shared pass, compares each score with its tier's
calibrated threshold (``promedical rm calibrate`` stores them in the checkpoint's ``rm.json``) and writes a
``Verdict`` per criterion with ``judge = "rm:<path>"``:

* ``score >= threshold`` means the criterion is *satisfied*; for a required criterion that is ``met``; for a
  ``prohibited`` veto, satisfied means the behaviour is absent, so the verdict is ``unmet`` (met = present);
* a scoring failure (e.g. the model raises on an input, or returns a NaN or infinite score) gives ``unscored``
  verdicts with the reason, never a silent unmet; the scoring path then excludes them from S1/S2 and counts
  unscored vetoes as violated.

``scores(rubric, response)`` runs the verdicts through ``promedical.rubrics.scoring.score``, the one scoring path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promedical.io import UserError
from promedical.judge.usage import Usage
from promedical.llm.protocol import Generator
from promedical.reward.inputs import CriterionInput, Group
from promedical.reward.model import RewardModel, load_rm
from promedical.reward.score import score_groups
from promedical.reward.windows import INPUT_HEAD, TruncationStats, Windowed
from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Polarity, Rubric
from promedical.rubrics.scoring import TIER_NAMES, RewardParams, Scores, met_from_satisfied, score

SCHEME = "rm"


class RMJudge:
    """Judge backend over a calibrated reward-model checkpoint (a ``promedical.judge.protocol.Judge``). It makes no
    language-model calls, so it has no usage and no generator."""

    usage: Usage | None = None
    generator: Generator | None = None

    def __init__(self, rm: RewardModel, batch_size: int = 16) -> None:
        missing = [t for t in TIER_NAMES if t not in rm.card.thresholds]
        if missing:
            raise UserError(f"{rm.path}: rm.json: thresholds: no calibrated threshold for {', '.join(missing)}; "
                            "run `promedical rm calibrate` first")
        self.rm = rm
        self.batch_size = batch_size
        self.name = f"{SCHEME}:{rm.path}"
        self.spec = self.name
        scheme = "" if rm.card.input == INPUT_HEAD else f"+{rm.card.input}"  # head/1 verdicts keep their old name
        self.template_version = f"rm-{rm.card.template}{scheme}"
        self.truncation = TruncationStats()  # over every response graded (see promedical.reward.windows)

    def _verdict(self, rubric: Rubric, response: Response, criterion_id: str, value: float,
                 read: Windowed | None = None) -> Verdict:
        c = rubric.criterion(criterion_id)
        threshold = self.rm.card.thresholds[c.tier.value].threshold
        if not math.isfinite(value):
            # NaN compares False with everything: read as "not satisfied" it would silently become unmet, or a
            # violated prohibited veto. A non-finite score is a model failure, so the verdict is unscored.
            return Verdict(response_id=response.id, rubric_id=rubric.id, criterion_id=c.id, status=Status.UNSCORED,
                           reason=f"reward model returned a non-finite score ({value})", judge=self.name,
                           template_version=self.template_version, meta={"score": None, "threshold": threshold})
        satisfied = value >= threshold
        met = met_from_satisfied(satisfied, c.polarity)
        margin = value - threshold
        p_satisfied = 1.0 / (1.0 + math.exp(-max(min(margin, 60.0), -60.0)))
        return Verdict(response_id=response.id, rubric_id=rubric.id, criterion_id=c.id,
                       status=Status.MET if met else Status.UNMET,
                       explanation=f"reward-model score {value:.4f} vs {c.tier.value} threshold {threshold:.4f}",
                       judge=self.name, template_version=self.template_version,
                       confidence=p_satisfied if satisfied else 1.0 - p_satisfied,
                       meta={"score": value, "threshold": threshold, "satisfied": satisfied,
                             **(_read_meta(self.rm.card.input, read) if read is not None else {})})

    def grade(self, rubric: Rubric, response: Response) -> list[Verdict]:
        """One verdict per criterion of ``rubric`` for ``response``."""
        group = Group(rubric.instruction, response.text,
                      tuple(CriterionInput(c.text, c.tier.value, (c.polarity or Polarity.REQUIRED).value)
                            for c in rubric.criteria))
        try:
            scored = score_groups(self.rm, [group], self.batch_size)[0]
        except (RuntimeError, ValueError, IndexError) as exc:
            reason = f"reward model failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            return [Verdict(response_id=response.id, rubric_id=rubric.id, criterion_id=c.id, status=Status.UNSCORED,
                            reason=reason, judge=self.name, template_version=self.template_version)
                    for c in rubric.criteria]
        self.truncation.add(scored.windowed)
        return [self._verdict(rubric, response, c.id, v, scored.windowed)
                for c, v in zip(rubric.criteria, scored.scores, strict=True)]

    def grade_many(self, items: Sequence[tuple[Rubric, Response]], progress: Any = None) -> list[Verdict]:
        """Verdicts for every criterion of every (rubric, response), in input order.

        ``progress`` is the judge engine's hook (``add_total(n)``, ``advance(n)``), counted in responses.
        """
        if progress is not None:
            progress.add_total(len(items))
        out: list[Verdict] = []
        for rubric, response in items:
            out.extend(self.grade(rubric, response))
            if progress is not None:
                progress.advance(1)
        return out

    def close(self) -> None:
        """Nothing to release (weights are freed with the object); here for the judge protocol."""

    def scores(self, rubric: Rubric, response: Response, params: RewardParams | None = None) -> Scores:
        """S1, S2, S3 and the reward through the one scoring path."""
        statuses = {v.criterion_id: v.status for v in self.grade(rubric, response)}
        return score(rubric, statuses, params)


def _read_meta(scheme: str, read: Windowed) -> dict[str, Any]:
    """How much of the response the model read: input scheme, windows, tokens, whether some were left out."""
    return {"input": scheme, "windows": len(read.prefixes), "response_tokens": read.response_tokens,
            "truncated": read.truncated}


def load_rm_judge(path: str | Path, **options: Any) -> RMJudge:
    """``rm:<checkpoint>`` -> judge. Options: ``batch_size`` (criteria per forward pass)."""
    unknown = set(options) - {"batch_size"}
    if unknown:
        raise UserError(f"rm:{path}: -: -: unknown option(s) {', '.join(sorted(unknown))} (known: batch_size)")
    return RMJudge(load_rm(path), batch_size=int(options.get("batch_size", 16)))

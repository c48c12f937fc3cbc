"""The names of the files in a pipeline run directory: each is spelled here once.

The stage table (``promedical.data.stages.STAGE_TABLE``) lists which of them a stage reads and writes; the stage
bodies and the ``data`` commands use the same constants, so a renamed file cannot leave a stale spelling behind.
"""

from __future__ import annotations

INSTRUCTIONS_RAW = "instructions.raw.jsonl"
PHYSICIAN_RUBRICS = "physician_rubrics.jsonl"
INSTRUCTIONS_DEDUP = "instructions.dedup.jsonl"
DEDUP_DROPPED = "dedup.dropped.jsonl"
INSTRUCTIONS_RATED = "instructions.rated.jsonl"
DIFFICULTY_DROPPED = "difficulty.dropped.jsonl"
INSTRUCTIONS = "instructions.jsonl"
RUBRICS_DRAFTED = "rubrics.drafted.jsonl"
DRAFTS_REPORT = "drafts.report.jsonl"
FEWSHOT_POOL = "fewshot_pool.jsonl"
RUBRICS = "rubrics.jsonl"
REVIEW_ROUNDS = "review_rounds.jsonl"
REVIEW_DIR = "review"
REVIEWED_POOL = f"{REVIEW_DIR}/pool.reviewed.jsonl"
DECISIONS_PATTERN = "round-*.decisions.jsonl"  # the files of ``review_decisions`` inside REVIEW_DIR
RESPONSES = "responses.jsonl"
VERDICTS = "verdicts.jsonl"
PAIRS = "pairs.jsonl"
CRITERION_PAIRS = "criterion_pairs.jsonl"
SPLITS_INDEX = "splits/index.json"
EXPORTS_INDEX = "exports/index.json"
AUDIT = "audit.json"
LLM_CACHE = "llm_cache.sqlite"
CONFIG = "pipeline.config.json"


def split_dir(name: str) -> str:
    """One split's folder; it holds ``RUBRICS``, ``PAIRS`` and ``CRITERION_PAIRS`` of that split."""
    return f"splits/{name}"


def export_dir(name: str) -> str:
    return f"exports/{name}"


def review_batch(round_number: int) -> str:
    """The drafted rubrics sent out for review round ``round_number`` (``data review-out``)."""
    return f"{REVIEW_DIR}/round-{round_number}.batch.jsonl"


def review_decisions(round_number: int) -> str:
    """The expert decisions of review round ``round_number`` added with ``data review-in``."""
    return f"{REVIEW_DIR}/round-{round_number}.decisions.jsonl"

"""TRL exports: pairs, GRPO prompts and criterion rows in JSONL, Parquet and ``datasets`` form, in the
conversational format TRL's trainers accept."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from promedical.data.exports import export_all
from promedical.data.preferences import build_pairs, expand_pair
from promedical.rubrics.records import CriterionPair, Response, Status
from promedical.rubrics.schema import Criterion, Message, Rubric, Tier


def test_exports_round_trip_in_trl_conversational_format(tmp_path: Path) -> None:
    from datasets import load_from_disk
    from trl.data_utils import is_conversational

    rubric = Rubric(id="rb-x", prompt=(Message(role="user", content="Can I drink alcohol on metronidazole?"),),
                    criteria=(Criterion(id="p1", tier=Tier.PROFICIENCY, text="Says to avoid alcohol", weight=1.0),
                              Criterion(id="b1", tier=Tier.BONUS, text="Explains the reaction")))
    a = Response(id="rs-a", rubric_id="rb-x", model="m1", text="Avoid alcohol: it causes a disulfiram-like reaction.")
    b = Response(id="rs-b", rubric_id="rb-x", model="m2", text="A glass of wine is fine.")
    statuses = {"rs-a": {"p1": Status.MET, "b1": Status.MET}, "rs-b": {"p1": Status.UNMET, "b1": Status.UNMET}}
    pairs = build_pairs(rubric, [a, b], statuses)
    rows = [r for p in pairs for r in expand_pair(p, rubric, statuses, Counter())]
    result = export_all(tmp_path, pairs, [rubric], rows)
    assert result["counts"] == {"pairs": 1, "grpo_prompts": 1, "criterion_pairs": 2}
    for name in ("pairs", "grpo_prompts", "criterion_pairs"):
        for suffix in (".jsonl", ".parquet", ".hf"):
            assert (tmp_path / f"{name}{suffix}").exists(), name + suffix
    pair_set = load_from_disk(str(tmp_path / "pairs.hf"))
    example = pair_set[0]
    assert is_conversational(example)
    assert example["prompt"] == [{"role": "user", "content": "Can I drink alcohol on metronidazole?"}]
    assert example["chosen"] == [{"role": "assistant", "content": a.text}]
    assert example["rejected"][0]["content"] == b.text and example["decided_by"] == "s1"
    from datasets import Dataset

    parquet = Dataset.from_parquet(str(tmp_path / "criterion_pairs.parquet"))
    assert sorted(parquet["criterion_id"]) == ["b1", "p1"] and set(parquet["tier"]) == {"proficiency", "bonus"}
    grpo = [json.loads(line) for line in (tmp_path / "grpo_prompts.jsonl").read_text().splitlines()]
    assert grpo == [{"rubric_id": "rb-x", "rubric_version": 1, "prompt": [m.model_dump() for m in rubric.prompt]}]
    records = [CriterionPair.model_validate_json(line)
               for line in (tmp_path / "criterion_pairs.records.jsonl").read_text().splitlines()]
    assert {r.criterion for r in records} == {"Says to avoid alcohol", "Explains the reaction"}

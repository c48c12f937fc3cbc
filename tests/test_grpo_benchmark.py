"""The recorded GRPO experiment's data handling (benchmarks/grpo_smollm2.py): the prompt split by instruction with
blind-test prompts dropped, and the merge of sampled answers for the DPO arm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promedical.data.blind import BLIND_FILE, BlindList
from promedical.data.splits import rubric_key
from promedical.io import read_rubrics
from tests.helpers_importers import SHARED
from tests.helpers_scripts import load_benchmark

grpo_bench = load_benchmark("grpo_smollm2")


@pytest.mark.skipif(not (SHARED / "k-qa").is_dir(), reason="../shared/data is not present")
def test_prompts_are_split_by_instruction_and_blind_prompts_dropped(tmp_path: Path) -> None:
    count = grpo_bench.prepare(tmp_path, 200, 200, 400)
    train = read_rubrics([tmp_path / "train_rubrics.jsonl"])
    heldout = read_rubrics([tmp_path / "heldout_rubrics.jsonl"])
    assert len(train) == count["train"] > 0 and len(heldout) == count["heldout"] > 0
    assert {rubric_key(r) for r in train}.isdisjoint({rubric_key(r) for r in heldout})
    assert count["shared_keys"] == 0
    if (SHARED / BLIND_FILE).is_file():
        blind = BlindList.read(SHARED / BLIND_FILE)
        assert not [r.id for r in (*train, *heldout) if blind.match(r.instruction, r.id)]
        assert count["blind_dropped"] > 0  # K-QA's answered questions include blind ones
    # both sources on the training side: K-QA (no vetoes) and HealthBench (vetoes)
    assert set(count["train_sources"]) == {"kqa", "healthbench"}
    assert json.loads((tmp_path / "prepare.json").read_text()) == count


def test_merge_keeps_one_record_per_key(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"response_id": "r1", "criterion_id": "c0", "judge": "j", "status": "met"}\n'
                 '{"response_id": "r1", "criterion_id": "c1", "judge": "j", "status": "unmet"}\n')
    # the same answer sampled twice: its verdicts appear in both files
    b.write_text('{"response_id": "r1", "criterion_id": "c0", "judge": "j", "status": "met"}\n\n'
                 '{"response_id": "r2", "criterion_id": "c0", "judge": "j", "status": "met"}\n')
    out = tmp_path / "merged.jsonl"
    n = grpo_bench.merge_jsonl([a, b], out, key=("response_id", "criterion_id", "judge"))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert n == 3
    assert [(r["response_id"], r["criterion_id"]) for r in rows] == [("r1", "c0"), ("r1", "c1"), ("r2", "c0")]
    assert not list(tmp_path.glob("*.tmp"))
    # responses merge by their id
    x, y = tmp_path / "x.jsonl", tmp_path / "y.jsonl"
    x.write_text('{"id": "r1", "text": "a"}\n{"id": "r2", "text": "b"}\n')
    y.write_text('{"id": "r2", "text": "b"}\n{"id": "r3", "text": "c"}\n')
    assert grpo_bench.merge_jsonl([x, y], tmp_path / "ids.jsonl") == 3


def _bench_run(root: Path, name: str, rewards: dict[str, float], lexical: dict[str, float], words: int = 3) -> Path:
    """A bench run directory as ``promedical bench run`` lays it out: scores of the training judge, and an also-judge
    whose folder the summary names (by the absolute path of the run that wrote it, possibly elsewhere)."""
    run = root / name
    (run / "judges" / "lexical_0.5-abc").mkdir(parents=True)
    (run / "scores.jsonl").write_text("".join(json.dumps({"rubric_id": k, "reward": v}) + "\n"
                                              for k, v in rewards.items()))
    (run / "judges" / "lexical_0.5-abc" / "scores.jsonl").write_text(
        "".join(json.dumps({"rubric_id": k, "reward": v}) + "\n" for k, v in lexical.items()))
    (run / "summary.json").write_text(json.dumps(
        {"independent": {"lexical:0.5": {"dir": f"/elsewhere/{name}/judges/lexical_0.5-abc"}}}))
    (run / "responses.jsonl").write_text("".join(json.dumps({"rubric_id": k, "text": " ".join(["w"] * words)}) + "\n"
                                                 for k in rewards))
    return run


def test_sampled_compare_pairs_prompt_means(tmp_path: Path) -> None:
    # policy A's two samples average 0.5 above B's on every prompt under lexical; under the RM they tie on average
    a = [_bench_run(tmp_path, "a1", {"p1": 0.2, "p2": 0.4, "p3": 0.0}, {"p1": 1.0, "p2": 0.9, "p3": 0.8}),
         _bench_run(tmp_path, "a2", {"p1": 0.4, "p2": 0.0, "p3": 0.2}, {"p1": 0.6, "p2": 0.7, "p3": 0.8})]
    b = [_bench_run(tmp_path, "b1", {"p1": 0.3, "p2": 0.2, "p3": 0.1, "p4": 1.0}, {"p1": 0.2, "p2": 0.3, "p3": 0.3}),
         _bench_run(tmp_path, "b2", {"p1": 0.3, "p2": 0.2, "p3": 0.1}, {"p1": 0.4, "p2": 0.3, "p3": 0.3})]
    lexical = grpo_bench.sampled_compare(a, b, "lexical:0.5")
    assert lexical["n"] == 3 and lexical["samples"] == (2, 2)
    assert lexical["difference"] == pytest.approx(0.5)
    assert lexical["ci"][0] == pytest.approx(0.5) and lexical["ci"][1] == pytest.approx(0.5)
    rm = grpo_bench.sampled_compare(a, b, None)  # p4 is scored on one side only: left out
    assert rm["n"] == 3 and rm["difference"] == pytest.approx(0.0)
    assert rm["a"] == pytest.approx(0.2) and rm["b"] == pytest.approx(0.2)
    assert rm["words"] == [3.0, 3.0]
    with pytest.raises(ValueError, match="no rubric"):
        grpo_bench.sampled_compare(a, [_bench_run(tmp_path, "c", {"q": 0.1}, {"q": 0.1})], None)


def test_length_adjustment_separates_a_length_gain_from_a_gain_at_equal_length() -> None:
    import numpy as np

    longer = np.array([0.0, 2.0, 4.0, 6.0, 8.0, 10.0])  # words more than the other policy, per prompt
    only_length = grpo_bench.length_adjusted(0.01 * longer, longer, n_resamples=500)
    assert only_length["at_equal_length"] == pytest.approx(0.0, abs=1e-12)
    assert only_length["per_word"] == pytest.approx(0.01)
    both = grpo_bench.length_adjusted(0.05 + 0.01 * longer + np.array([0.01, -0.01] * 3), longer, n_resamples=500)
    assert both["at_equal_length"] == pytest.approx(0.05, abs=0.01)
    assert both["ci"][0] > 0.02 and both["ci"][1] < 0.08

"""K-QA physician NLI labels -> verdicts: claim matching rules, label mapping, and the ``labels import`` command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from promedical.io import write_jsonl
from promedical.labels import MAJORITY_JUDGE, import_kqa_nli
from promedical.labels.matching import CLAIM_THRESHOLD, RubricIndex, match, match_claim, similarity
from promedical.rubrics.importers import import_kqa
from promedical.rubrics.records import Response, Status
from promedical.rubrics.schema import Criterion, Message, Rubric, RubricMeta, Tier
from tests.helpers_importers import KQA, KQA_NLI, last_json, run_cli, shared

QUESTION = "Is it safe to take ibuprofen   with lisinopril for my knee pain?"
COLUMNS = ["", "Question", "llm_x", "answer", "claim", "category_x", "majority_label", "label_0", "label_1",
           "label_2"]


def rubric() -> Rubric:
    must = ["NSAIDs such as ibuprofen can reduce the effect of ACE inhibitors",
            "Combining them raises the risk of kidney injury",
            "Paracetamol is a safer option for pain relief",
            "Ask your doctor before combining the two medications"]
    nice = ["Topical NSAIDs carry less risk than tablets"]
    criteria = [Criterion(id=f"must-{i}", tier=Tier.PROFICIENCY, text=t, weight=0.25) for i, t in enumerate(must)]
    criteria.append(Criterion(id="nice-0", tier=Tier.BONUS, text=nice[0]))
    statements = {f"must-{i}": t for i, t in enumerate(must)} | {"nice-0": nice[0]}
    # an imported statement the importer split in two: both parts come from one glued source statement
    statements["must-1"] = statements["must-2"] = "Combining them raises the risk of kidney injury.Paracetamol is " \
        "a safer option for pain relief"
    return Rubric(id="kqa-test", prompt=(Message(role="user", content=" ".join(QUESTION.split())),),
                  criteria=tuple(criteria), meta=RubricMeta(source="kqa", extra={"statements": statements}))


def other_rubric() -> Rubric:
    return Rubric(id="kqa-other", prompt=(Message(role="user", content="What helps a migraine attack?"),),
                  criteria=(Criterion(id="must-0", tier=Tier.PROFICIENCY, text="Triptans can stop an attack",
                                      weight=1.0),))


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for index, row in enumerate(rows):
            writer.writerow([str(index), *row])
    return path


def row(claim: str, majority: str, labels: tuple[str, str, str] | None = None, question: str = QUESTION,
        category: str = "Must_have", model: str = "gpt4", answer: str = "Ibuprofen may blunt lisinopril.\nAsk.") \
        -> list[str]:
    labels = labels or (majority, majority, majority)
    return [question, model, answer, claim, category, majority, *labels]


# --- matching ---------------------------------------------------------------------------------------------------

def test_exact_match_ignores_case_spacing_bullets_quotes_and_end_punctuation() -> None:
    claim = '  • "nsaids such as ibuprofen can  reduce the effect of ACE inhibitors."  '
    found = match_claim(rubric(), claim)
    assert not hasattr(found, "reason")
    criteria, method, score = found  # type: ignore[misc]
    assert [c.id for c in criteria] == ["must-0"] and method == "exact" and score == 1.0


def test_glued_source_statement_matches_all_its_parts() -> None:
    found = match_claim(rubric(), "Combining them raises the risk of kidney injury.Paracetamol is a safer option "
                                  "for pain relief")
    criteria, method, _ = found  # type: ignore[misc]
    assert [c.id for c in criteria] == ["must-1", "must-2"] and method == "source"


def test_claim_of_two_sentences_matches_each_part_exactly() -> None:
    found = match_claim(rubric(), "Paracetamol is a safer option for pain relief. Topical NSAIDs carry less risk "
                                  "than tablets.")
    criteria, method, _ = found  # type: ignore[misc]
    assert [c.id for c in criteria] == ["must-2", "nice-0"] and method == "split"


def test_a_typo_matches_by_fuzzy_ratio_above_the_threshold() -> None:
    claim = "NSAIDs such as ibuprofen can reduce the efect of ACE inhibiters"
    found = match_claim(rubric(), claim)
    criteria, method, score = found  # type: ignore[misc]
    assert [c.id for c in criteria] == ["must-0"] and method == "fuzzy"
    assert CLAIM_THRESHOLD <= score < 1.0


def test_unrelated_claim_is_unmatched_with_the_closest_criterion_named() -> None:
    found = match_claim(rubric(), "Regular exercise strengthens the muscles around the knee")
    assert getattr(found, "reason", None) == "claim_not_found"
    assert "closest" in found.detail  # type: ignore[union-attr]


def test_two_equally_close_criteria_are_never_guessed() -> None:
    twin = Rubric(id="kqa-twin", prompt=(Message(role="user", content="q?"),), criteria=(
        Criterion(id="must-0", tier=Tier.PROFICIENCY, text="Take 200 mg of ibuprofen every 6 hours", weight=0.5),
        Criterion(id="must-1", tier=Tier.PROFICIENCY, text="Take 400 mg of ibuprofen every 6 hours", weight=0.5)))
    found = match_claim(twin, "Take 300 mg of ibuprofen every 6 hours")
    assert getattr(found, "reason", None) == "claim_ambiguous"


def test_question_matches_after_whitespace_and_case_and_by_close_spelling() -> None:
    index = RubricIndex([rubric(), other_rubric()])
    exact = match(index, "IS IT SAFE to take ibuprofen with lisinopril for my knee pain?", "Paracetamol is a safer "
                  "option for pain relief")
    assert exact.question_method == "exact"  # type: ignore[union-attr]
    close = match(index, "Is it safe to take ibuprofen with lisinopril for my knee pains?", "Paracetamol is a safer "
                  "option for pain relief")
    assert close.question_method == "fuzzy" and close.rubric.id == "kqa-test"  # type: ignore[union-attr]
    missing = match(index, "How do I treat a sprained ankle?", "Rest it")
    assert getattr(missing, "reason", None) == "question_not_found"


def test_similarity_is_symmetric_and_one_on_identity() -> None:
    assert similarity("abc def", "abc def") == 1.0
    assert similarity("abc def", "abd ef") == similarity("abd ef", "abc def")


# --- label mapping ----------------------------------------------------------------------------------------------

def test_labels_map_to_verdicts_one_per_annotator_and_one_majority(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "nli.csv", [
        row("NSAIDs such as ibuprofen can reduce the effect of ACE inhibitors", "Entailment",
            ("Entailment", "Neutral", "Entailment")),
        row("Ask your doctor before combining the two medications", "Contradiction",
            ("Contradiction", "Contradiction", "Neutral")),
        row("Topical NSAIDs carry less risk than tablets", "Neutral", category="Nice_to_have"),
    ])
    result = import_kqa_nli(path, [rubric(), other_rubric()])
    assert result.problems == [] and result.unmatched == []
    assert result.rows == 3 and result.matched == 3 and len(result.verdicts) == 12
    got = {(v.judge, v.criterion_id): v for v in result.verdicts}
    assert got[(MAJORITY_JUDGE, "must-0")].status is Status.MET
    assert got[("human:kqa-annotator-1", "must-0")].status is Status.UNMET
    contradicted = got[(MAJORITY_JUDGE, "must-3")]
    assert contradicted.status is Status.UNMET and contradicted.meta["contradiction"] is True
    assert got[("human:kqa-annotator-2", "must-3")].meta["contradiction"] is False
    assert got[(MAJORITY_JUDGE, "nice-0")].meta["tier"] == "bonus"
    assert got[(MAJORITY_JUDGE, "must-0")].meta["tier"] == "proficiency"
    # one answer -> one response, keyed as Response.build would key it; model is llm_x
    assert len(result.responses) == 1
    response = result.responses[0]
    assert response.model == "gpt4" and response.text == "Ibuprofen may blunt lisinopril.\nAsk."
    assert response.id == Response.make_id("kqa-test", "gpt4", response.text)
    assert {v.response_id for v in result.verdicts} == {response.id}


def test_glued_claim_is_kept_only_when_every_label_is_entailment(tmp_path: Path) -> None:
    glued = "Combining them raises the risk of kidney injury.Paracetamol is a safer option for pain relief"
    path = write_csv(tmp_path / "nli.csv", [
        row(glued, "Entailment", model="gpt4"),
        row(glued, "Entailment", ("Entailment", "Entailment", "Neutral"), model="bard", answer="other answer"),
    ])
    result = import_kqa_nli(path, [rubric()])
    assert result.matched == 1 and [u.reason for u in result.unmatched] == ["claim_spans_criteria"]
    assert sorted({v.criterion_id for v in result.verdicts}) == ["must-1", "must-2"]
    assert all(v.status is Status.MET for v in result.verdicts) and len(result.verdicts) == 8


def test_missing_majority_is_derived_and_missing_annotator_gives_no_verdict(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "nli.csv", [
        row("Paracetamol is a safer option for pain relief", "", ("Neutral", "Neutral", "")),
        row("Ask your doctor before combining the two medications", "", ("Neutral", "Entailment", "")),
    ])
    result = import_kqa_nli(path, [rubric()])
    judges = sorted(v.judge for v in result.verdicts)
    assert judges == ["human:kqa-annotator-0", "human:kqa-annotator-0", "human:kqa-annotator-1",
                      "human:kqa-annotator-1", MAJORITY_JUDGE]
    assert result.notes["majority_derived"] == 1 and result.notes["majority_missing"] == 1
    assert result.notes["annotator_labels_missing"] == 2


def test_conflicting_duplicate_label_is_reported_not_overwritten(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "nli.csv", [
        row("Paracetamol is a safer option for pain relief", "Entailment"),
        row("paracetamol is a safer option for pain relief.", "Neutral"),
        row("Paracetamol is a safer option for pain relief!", "Entailment"),
    ])
    result = import_kqa_nli(path, [rubric()])
    assert [u.reason for u in result.unmatched] == ["conflicting_duplicate"]
    assert result.notes["duplicate_labels_dropped"] == 4
    assert {v.status for v in result.verdicts} == {Status.MET} and len(result.verdicts) == 4


def test_bad_label_and_missing_column_are_problems_naming_the_field(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "nli.csv", [row("Paracetamol is a safer option for pain relief", "Entailed")])
    result = import_kqa_nli(path, [rubric()])
    assert [(p.line, p.field) for p in result.problems] == [(2, "majority_label")]
    broken = tmp_path / "broken.csv"
    broken.write_text("Question,llm_x,answer,claim\nq,gpt4,a,c\n", encoding="utf-8")
    problems = import_kqa_nli(broken, [rubric()]).problems
    assert len(problems) == 1 and problems[0].field == "category_x"


# --- the command ------------------------------------------------------------------------------------------------

def test_cli_writes_verdicts_and_responses_and_reports_counts(tmp_path: Path) -> None:
    rubrics = tmp_path / "rubrics.jsonl"
    write_jsonl(rubrics, [rubric(), other_rubric()])
    labels = write_csv(tmp_path / "nli.csv", [
        row("Paracetamol is a safer option for pain relief", "Entailment"),
        row("Exercise strengthens the knee", "Neutral"),
    ])
    out, responses = tmp_path / "labels.jsonl", tmp_path / "responses.jsonl"
    proc = run_cli("labels", "import", "--format", "kqa-nli", labels, "--rubrics", rubrics, "-o", out,
                   "--responses-out", responses, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = last_json(proc.stdout)
    assert summary["matched"] == 1 and summary["unmatched"] == 1
    assert summary["unmatched_by_reason"] == {"claim_not_found": 1}
    assert "claim_not_found" in proc.stderr
    assert len(out.read_text().splitlines()) == 4 and len(responses.read_text().splitlines()) == 1


def test_cli_bad_row_is_one_line_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    rubrics = tmp_path / "rubrics.jsonl"
    write_jsonl(rubrics, [rubric()])
    labels = write_csv(tmp_path / "nli.csv", [row("Paracetamol is a safer option for pain relief", "maybe")])
    out = tmp_path / "labels.jsonl"
    proc = run_cli("labels", "import", "--format", "kqa-nli", labels, "--rubrics", rubrics, "-o", out)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {labels}:2: row 0: majority_label: expected Entailment")
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_real_kqa_labels_match_the_imported_rubrics(tmp_path: Path) -> None:
    result = import_kqa_nli(shared(KQA_NLI), import_kqa(shared(KQA)).rubrics)
    assert result.problems == []
    assert result.rows == 251 and result.matched + len(result.unmatched) == 251
    # the only misses are glued claims with a non-Entailment label, which cannot be split honestly
    assert result.matched >= 245
    assert {u.reason for u in result.unmatched} <= {"claim_spans_criteria"}
    majority = [v for v in result.verdicts if v.judge == MAJORITY_JUDGE]
    assert len(majority) >= result.matched
    assert len({v.response_id for v in majority}) == len(result.responses) == 30
    json.dumps(result.summary())  # the summary is plain JSON

"""Extra reward-model supervision (``promedical rm build-supervision``): blind drop, split audit, balance, ablations.

The end-to-end tests build the real K-QA construction once (real MiniLM, real ``../shared/data`` files, the CLI as a
user runs it) and check what was written independently of the builder's own audit; they skip when the shared data
folder is absent. The small tests at the top need no data.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promedical.data.splits import HELD_OUT_FRACTIONS, instruction_key, split_of
from promedical.reward.data import read_labelled
from promedical.reward.predict import lexical_score
from promedical.reward.supervision import (
    AblationRule,
    Unit,
    audit_splits,
    blind_match,
    distinctive_words,
    join_units,
    list_items,
    plan_ablation,
    plan_item,
    read_split_dir,
    split_units,
    word_share,
    words,
)
from promedical.rubrics.schema import Criterion, Message, Rubric, RubricMeta, Tier
from tests.helpers_importers import SHARED, last_json, run_cli

SPLITS = tuple(HELD_OUT_FRACTIONS)


# --- no data needed ---------------------------------------------------------------------------------------------

def test_units_split_sentences_and_join_back_by_line() -> None:
    units = split_units("Take it with food. It may upset the stomach.\n- Call if you faint\n\nSee a doctor.")
    assert [u.text for u in units] == ["Take it with food.", "It may upset the stomach.", "- Call if you faint",
                                       "See a doctor."]
    assert join_units([units[0], units[2], units[3]]) == "Take it with food.\n- Call if you faint\nSee a doctor."


def test_blind_match_by_exact_text_and_by_normalised_key() -> None:
    blind = ["Can diabetics eat sweets?"]
    assert blind_match("Can diabetics eat sweets?", blind) == "exact"
    assert blind_match("Can diabetics eat sweets?\n", blind) == "normalised"  # the K-QA file has this one
    assert blind_match("can  DIABETICS eat sweets?", blind) == "normalised"
    assert blind_match("Can diabetics eat fruit?", blind) is None


def _plan(cos: list[float], texts: list[str], statement: str, question: str) -> Any:
    unit_words = [words(t) for t in texts]
    openers = [t.split()[0].lower() for t in texts]
    return plan_ablation(np.array(cos), unit_words, distinctive_words(statement, question), [len(t) for t in texts],
                         AblationRule(), openers)


def test_ablation_removes_the_supporting_sentence_and_refuses_unclear_cases() -> None:
    question = "What are the side effects of lexapro?"
    texts = ["Lexapro is an antidepressant of the SSRI class.", "Side effects include headache and insomnia.",
             "Most people tolerate it well over months of use.", "Talk to your doctor before stopping treatment."]
    plan = _plan([0.5, 0.9, 0.55, 0.4], texts, "Side effects of Lexapro include insomnia", question)
    assert not isinstance(plan, str) and plan.removed == (1,)
    # the answer's only mention of the drug class sits in the first sentence, but a pronoun leans on it
    dangling = ["Lexapro is an SSRI antidepressant.", "It is usually well tolerated by most adults.",
                "Side effects include headache and insomnia.", "Talk to your doctor before stopping treatment."]
    assert _plan([0.9, 0.6, 0.5, 0.3], dangling, "Lexapro is an SSRI", question) == "dangling_reference"
    # a paraphrase of the statement remains after the deletion: no clean negative
    restated = ["Insomnia is a side effect.", "Lexapro can cause insomnia as a side effect.",
                "Talk to your doctor before stopping treatment.", "Most people tolerate it well over months."]
    assert _plan([0.95, 0.93, 0.3, 0.3], restated, "Lexapro can cause insomnia", question) in {
        "support_spread", "paraphrase_remains"}


def test_item_deletion_takes_one_list_item_and_keeps_the_list_grammatical() -> None:
    rule = AblationRule()
    sentence = "Side effects include headache, nausea, sleepiness, and insomnia (rarely, severe)."
    assert list_items(sentence) == (["Side effects include headache", "nausea", "sleepiness",
                                     "and insomnia (rarely, severe)"], ".")
    wanted = distinctive_words("Side effects of Lexapro include sleepiness", "What does Lexapro do?")
    assert plan_item(sentence, wanted, set(), rule) == (
        "Side effects include headache, nausea, and insomnia (rarely, severe).", "sleepiness")
    last = plan_item(sentence, distinctive_words("Lexapro can cause insomnia", "What does Lexapro do?"), set(), rule)
    assert last == ("Side effects include headache, nausea, and sleepiness.", "insomnia (rarely, severe)")
    # the item's word appears in another sentence of the answer: deleting it here takes nothing away
    assert plan_item(sentence, wanted, {"sleepiness"}, rule) == "item_restated"
    # appositions are no list: "yeast, such as candida, and bacteria"
    apposition = "The vagina holds yeast, such as candida, and bacteria, such as lactobacillus."
    assert plan_item(apposition, {"bacteria"}, set(), rule) == "not_a_list"
    assert isinstance(plan_item(apposition, {"candida"}, set(), rule), str)
    assert plan_item("Rest, then ice it.", {"ice"}, set(), rule) == "no_list"


def _rubric(rid: str, question: str) -> Rubric:
    return Rubric(id=rid, prompt=(Message(role="user", content=question),),
                  criteria=(Criterion(id="c0", tier=Tier.PROFICIENCY, text="Says something", weight=1.0),),
                  meta=RubricMeta(extra={"source_question_id": rid}))


def test_audit_flags_a_question_in_two_splits_and_a_blind_question() -> None:
    q = "Is ibuprofen safe with lisinopril?"
    home = split_of(instruction_key(q), HELD_OUT_FRACTIONS)
    other = next(s for s in SPLITS if s != home)
    clean = audit_splits({home: [_rubric("a", q)]}, [], HELD_OUT_FRACTIONS)
    assert clean["ok"]
    twice = audit_splits({home: [_rubric("a", q)], other: [_rubric("b", q.upper() + " ")]}, [], HELD_OUT_FRACTIONS)
    assert not twice["ok"] and twice["normalised_key_in_two_splits"] == 1 and twice["rubrics_in_wrong_split"] == 1
    blind = audit_splits({home: [_rubric("a", q)]}, [q.lower()], HELD_OUT_FRACTIONS)
    assert not blind["ok"] and blind["blind_normalised_key_present"] == 1 and blind["blind_exact_text_present"] == 0
    borrowed = audit_splits({home: [_rubric("a", q)]}, [], HELD_OUT_FRACTIONS, {home: ["elsewhere"]})
    assert not borrowed["ok"] and borrowed["borrowed_from_other_split"] == 1


def test_cli_refuses_a_data_folder_without_the_blind_list(tmp_path: Path) -> None:
    (tmp_path / "k-qa").mkdir()
    (tmp_path / "k-qa" / "questions_w_answers.jsonl").write_text("")
    out = run_cli("rm", "build-supervision", "-o", tmp_path / "out", "--data", tmp_path)
    assert out.returncode == 2, out.stderr
    assert "blind_test.json" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()
    bad = run_cli("rm", "build-supervision", "-o", tmp_path / "out", "--data", tmp_path, "--constructions", "nope")
    assert bad.returncode == 2 and "nope" in bad.stderr


# --- the real construction --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not (SHARED / "k-qa" / "questions_w_answers.jsonl").is_file() or not (SHARED / "blind_test.json").is_file():
        pytest.skip(f"shared data not available: {SHARED}")
    out = tmp_path_factory.mktemp("supervision")
    result = run_cli("rm", "build-supervision", "-o", out, "--data", SHARED, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "supervision.manifest.json").read_text())
    return {"out": out, "summary": last_json(result.stdout), "manifest": manifest,
            "splits": {s: read_split_dir(out / s) for s in SPLITS}}


def _blind() -> list[str]:
    return list(json.loads((SHARED / "blind_test.json").read_text())["kqa_questions"])


def test_every_blind_question_is_dropped_and_counted(built: dict[str, Any]) -> None:
    blind = _blind()
    report = built["manifest"]["blind"]["kqa-answers"]
    # 18 by exact text (as the data README says) and one more that differs only by a trailing newline
    assert report["dropped_by"] == {"exact": 18, "normalised": 1} and report["dropped"] == 19
    assert built["summary"]["blind_dropped"] == 19
    keys = {instruction_key(b) for b in blind}
    for rubrics, _, verdicts in built["splits"].values():
        assert not [r.instruction for r in rubrics if r.instruction in blind or instruction_key(r.instruction) in keys]
        borrowed = {v.meta.get("borrowed_from_question_id") for v in verdicts} - {None}
        dropped = {row["question_id"] for row in report["dropped_rows"]}
        assert not borrowed & dropped  # no statement of a blind question is borrowed as a negative either
    kqa = [json.loads(line)["Question"] for line in (SHARED / "k-qa" / "questions_w_answers.jsonl").open()]
    assert sum(len([x for x in r if x.id.startswith("sup-kqa-")]) for r, _, _ in built["splits"].values()) == len(
        kqa) - 19


def test_no_instruction_is_in_two_splits_and_each_is_where_the_project_split_puts_it(built: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    for split, (rubrics, responses, verdicts) in built["splits"].items():
        ids = {r.id for r in rubrics}
        source_ids = {r.meta.extra["source_question_id"] for r in rubrics}
        for r in rubrics:
            key = instruction_key(r.instruction)
            assert seen.setdefault(key, split) == split, f"{key!r} in {seen[key]} and {split}"
            assert split_of(key, HELD_OUT_FRACTIONS) == split
        assert {x.rubric_id for x in responses} <= ids and {v.rubric_id for v in verdicts} <= ids
        for v in verdicts:
            assert v.meta["split"] == split
            if "borrowed_from_question_id" in v.meta:
                assert v.meta["borrowed_from_question_id"] in source_ids  # borrowed from the same split only
    assert built["manifest"]["audit"]["ok"] is True
    assert built["manifest"]["audit"]["normalised_key_in_two_splits"] == 0


def test_labels_are_balanced_and_easy_negatives_stay_a_minority(built: dict[str, Any]) -> None:
    for split, (_, _, every) in built["splits"].items():
        verdicts = [v for v in every if v.meta["construction"].startswith("kqa-answers/")]
        kinds = Counter(v.meta["construction"].rpartition("/")[2] for v in verdicts)
        met = sum(v.status.value == "met" for v in verdicts)
        assert 0.45 <= met / len(verdicts) <= 0.56, (split, met, len(verdicts))
        negatives = kinds["ablated"] + kinds["foreign"]
        negatives += kinds["item"]
        assert 0 < kinds["foreign"] < 0.45 * negatives, (split, kinds)
        assert kinds["item"] > 0
        assert kinds["kept"] > 0 and kinds["positive"] > 0
    counts = built["manifest"]["counts"]
    for tier in ("proficiency", "bonus"):
        for label, kind in (("satisfied", "positive"), ("unsatisfied", "ablated")):
            assert counts.get(f"kqa-answers/train/{tier}/{kind}/{label}", 0) > 0


def _edited_rows(built: dict[str, Any], kind: str) -> Iterator[tuple[Any, str, str, tuple[str, str]]]:
    """(verdict, edited text, the physician's full answer, (statement, question)) for every row of ``kind``,
    each checked to be labelled unmet."""
    for rubrics, responses, verdicts in built["splits"].values():
        texts = {x.id: x.text for x in responses}
        full = {x.rubric_id: x.text for x in responses if x.model == "kqa-physician"}
        criteria = {(r.id, c.id): (c.text, r.instruction) for r in rubrics for c in r.criteria}
        for v in verdicts:
            if v.meta["construction"].endswith(f"/{kind}"):
                assert v.status.value == "unmet"
                yield v, texts[v.response_id], full[v.rubric_id], criteria[(v.rubric_id, v.criterion_id)]


def test_an_ablated_answer_lost_its_supporting_sentence(built: dict[str, Any]) -> None:
    checked = 0
    for v, ablated, answer, (statement, question) in _edited_rows(built, "ablated"):
        for sentence in v.meta["removed"]:
            assert sentence in answer and sentence not in ablated
        # what is left is the answer's own sentences, in order, and at least 40% of it
        assert [u.text for u in split_units(ablated)] == [
            u.text for u in split_units(answer) if u.text not in v.meta["removed"]]
        assert sum(len(u.text) for u in split_units(ablated)) >= 0.4 * sum(len(u.text) for u in split_units(answer))
        wanted = distinctive_words(statement, question)
        before, after = word_share(wanted, words(answer)), word_share(wanted, words(ablated))
        assert after <= 0.5 and after < before, (statement, before, after)
        checked += 1
    assert checked > 300


def test_an_item_deleted_answer_misses_only_that_item_and_stays_lexically_close(built: dict[str, Any]) -> None:
    overlaps = []
    for v, edited, answer, (statement, question) in _edited_rows(built, "item"):
        before = [u.text for u in split_units(answer)]
        after = [u.text for u in split_units(edited)]
        changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert changed == [(v.meta["edited"], changed[0][1])]  # exactly one sentence changed
        carried = words(v.meta["deleted_item"]) & distinctive_words(statement, question)
        assert carried and not carried & words(edited), (statement, v.meta["deleted_item"])
        overlaps.append(lexical_score(edited, statement))
    assert len(overlaps) > 100
    assert float(np.median(overlaps)) >= 0.5  # most of them fool the lexical:0.5 baseline


def test_rows_carry_provenance_and_read_back_as_training_data(built: dict[str, Any]) -> None:
    sources = {"kqa-answers": ("k-qa/questions_w_answers.jsonl", "kqa-"),
               "pubmedqa-conclusions": ("pubmedqa/ori_pqal.json", "pubmedqa-")}
    for split in SPLITS:
        _, responses, verdicts = built["splits"][split]
        for v in verdicts:
            source_file, prefix = sources[v.meta["construction"].partition("/")[0]]
            assert v.meta["source_file"] == source_file and v.meta["source_question_id"].startswith(prefix)
        data = read_labelled(built["out"] / split)
        assert len(data.points) == len(verdicts)
        full = {x.text for x in responses if x.model == "kqa-physician"}
        derived = [p for p in data.pairs if p.source == "derived"]
        # the pairs the trainer derives: the full answer over an ablated one, or an ablated answer that kept the
        # statement's support over one that lost it
        assert derived and all(len(p.chosen) > 0 and p.rejected not in full for p in derived)
    sanity = built["manifest"]["lexical_0.5"]["test"]
    assert set(sanity) == {"all", *(f"kqa-answers/{k}" for k in ("positive", "ablated", "item", "kept", "foreign")),
                           "pubmedqa-conclusions/agrees", "pubmedqa-conclusions/opposite"}
    assert {c: v["license"] for c, v in built["manifest"]["licenses"].items()} == {
        "kqa-answers": "MIT", "pubmedqa-conclusions": "MIT"}


def test_pubmedqa_rows_take_one_stance_each_and_never_a_benchmark_item(built: dict[str, Any]) -> None:
    test_ids = set(json.loads((SHARED / "pubmedqa" / "test_ground_truth.json").read_text()))
    source = json.loads((SHARED / "pubmedqa" / "ori_pqal.json").read_text())
    seen = 0
    for rubrics, responses, verdicts in built["splits"].values():
        by_rubric: dict[str, list[Any]] = {}
        for v in verdicts:
            if v.meta["construction"].startswith("pubmedqa-conclusions/"):
                by_rubric.setdefault(v.rubric_id, []).append(v)
        texts = {x.rubric_id: x.text for x in responses}
        for r in rubrics:
            if not r.id.startswith("sup-pubmedqa-"):
                continue
            pmid = r.meta.extra["pmid"]
            assert pmid not in test_ids
            row = source[pmid]
            assert row["final_decision"] in ("yes", "no") and texts[r.id] == row["LONG_ANSWER"].strip()
            met = {v.criterion_id for v in by_rubric[r.id] if v.status.value == "met"}
            assert met == {f"answers-{row['final_decision']}"} and len(by_rubric[r.id]) == 2
            seen += 1
    skipped = built["manifest"]["skipped"]["pubmedqa-conclusions"]
    assert skipped["pubmedqa/benchmark_test_id"] == len(test_ids) == 500
    assert seen == len(source) - 500 - skipped["pubmedqa/decision_maybe"]


def test_written_units_round_trip() -> None:
    units = [Unit(0, "A."), Unit(0, "B."), Unit(2, "- C")]
    assert split_units(join_units(units)) == [Unit(0, "A."), Unit(0, "B."), Unit(1, "- C")]

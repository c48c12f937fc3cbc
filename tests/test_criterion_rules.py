"""The criterion rules have one home each.

* the tier names: ``Tier`` in ``rubrics/schema.py`` and ``TIER_NAMES`` derived from it beside it; no other module
  spells them as a tuple, list, set or ``Literal``;
* the polarity rule (met -> satisfied, and back): ``scoring.is_satisfied``; no other module restates it as
  ``x if <polarity test> else not x`` or ``x != <polarity test>``;
* the key of the lexicographic order that decided a comparison: ``OrderKey`` in ``rubrics/records.py``; no
  ``Literal["s3", "s1", "s2"]``.

Scanned with ``ast`` over the source of ``promedical/``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from promedical.rubrics.records import CriterionPair, OrderKey, PreferencePair, Status
from promedical.rubrics.schema import TIER_NAMES, Polarity, Tier
from promedical.rubrics.scoring import is_satisfied, met_from_satisfied

ROOT = Path(__file__).resolve().parents[1] / "promedical"
TIER_HOME = {"rubrics/schema.py"}
POLARITY_HOME = {"rubrics/scoring.py"}
TIERS = {t.value for t in Tier}
ORDER_KEYS = {k.value for k in OrderKey}
POLARITIES = {p.value for p in Polarity}


def _sources() -> dict[str, ast.Module]:
    return {str(p.relative_to(ROOT)): ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in ROOT.rglob("*.py")}


def _strings(node: ast.AST) -> set[str]:
    elts = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else []
    return {e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}


def _spells(node: ast.AST, names: set[str]) -> bool:
    """A literal collection (or ``Literal[...]``) naming at least two of ``names`` and nothing else."""
    found = _strings(node)
    return len(found) >= 2 and found <= names


def test_tier_names_are_spelled_only_beside_the_enum() -> None:
    offenders = sorted(f"{path}:{node.lineno}" for path, tree in _sources().items()
                       if path not in TIER_HOME
                       for node in ast.walk(tree) if _spells(node, TIERS))
    assert offenders == []


def test_decided_by_keys_are_spelled_only_in_the_enum() -> None:
    offenders = sorted(f"{path}:{node.lineno}" for path, tree in _sources().items()
                       for node in ast.walk(tree) if _spells(node, ORDER_KEYS))
    assert offenders == []


def _polarity_test(node: ast.AST) -> bool:
    if not isinstance(node, ast.Compare):
        return False
    parts = [node.left, *node.comparators]
    return any((isinstance(p, ast.Attribute) and p.attr in {"PROHIBITED", "REQUIRED"})
               or (isinstance(p, ast.Constant) and p.value in POLARITIES) for p in parts)


def _negation_pair(a: ast.AST, b: ast.AST) -> bool:
    def negated(x: ast.AST, y: ast.AST) -> bool:
        return isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.Not) and ast.dump(x.operand) == ast.dump(y)
    return negated(a, b) or negated(b, a)


def _restates_polarity_rule(node: ast.AST) -> bool:
    if isinstance(node, ast.IfExp):
        return _polarity_test(node.test) and _negation_pair(node.body, node.orelse)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.NotEq | ast.Eq):
        return _polarity_test(node.left) or _polarity_test(node.comparators[0])
    return False


def test_polarity_rule_is_stated_once() -> None:
    offenders = sorted(f"{path}:{node.lineno}" for path, tree in _sources().items()
                       if path not in POLARITY_HOME
                       for node in ast.walk(tree) if _restates_polarity_rule(node))
    assert offenders == []


def test_is_satisfied_reads_met_under_polarity() -> None:
    for polarity in (Polarity.REQUIRED, "required", None):
        assert is_satisfied(True, polarity) and not is_satisfied(False, polarity)
    for prohibited in (Polarity.PROHIBITED, "prohibited"):
        assert not is_satisfied(True, prohibited) and is_satisfied(False, prohibited)
    for polarity in (*Polarity, None):
        for met in (True, False):
            assert met_from_satisfied(is_satisfied(met, polarity), polarity) is met


def test_tier_names_follow_the_enum() -> None:
    assert TIER_NAMES == ("proficiency", "bonus", "veto")
    assert [k.value for k in OrderKey] == ["s3", "s1", "s2"]


def test_records_hold_enums_and_write_the_same_strings() -> None:
    row = CriterionPair(id="c", pair_id="p", rubric_id="r", criterion_id="v1", tier="veto", criterion="t",
                        polarity="prohibited", prompt=[], chosen="a", rejected="b", chosen_id="1", rejected_id="2")
    assert row.tier is Tier.VETO and row.polarity is Polarity.PROHIBITED
    dumped = json.loads(row.model_dump_json())
    assert (dumped["tier"], dumped["polarity"]) == ("veto", "prohibited")
    assert json.loads(json.dumps(row.model_dump()))["tier"] == "veto"
    pair = PreferencePair(id="p", rubric_id="r", prompt=[], chosen_id="1", rejected_id="2", chosen="a",
                          rejected="b", decided_by="s1", margins={})
    assert pair.decided_by is OrderKey.S1 and json.loads(pair.model_dump_json())["decided_by"] == "s1"
    assert Status.MET.value == "met"

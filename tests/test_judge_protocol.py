"""The judge protocol: ``load_judge`` returns a typed ``Judge`` whose members every caller uses directly, every
backend spec is parsed by ``promedical.llm.spec``, and no caller probes a judge with ``hasattr``/``getattr``."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from promedical.io import UserError
from promedical.judge.lexical import LexicalJudge
from promedical.judge.protocol import Judge, load_judge
from promedical.judge.usage import ProgressHook, Usage
from promedical.llm.cache import CachedGenerator
from promedical.llm.spec import lexical_threshold, parse_spec
from promedical.samples import load_responses, load_rubrics

ROOT = Path(__file__).resolve().parents[1]


def test_load_judge_is_typed_as_the_protocol() -> None:
    assert typing.get_type_hints(load_judge)["return"] is Judge


def test_the_lexical_judge_has_every_member_of_the_protocol() -> None:
    judge = load_judge("lexical:0.4")
    assert isinstance(judge, Judge) and isinstance(judge, LexicalJudge)
    assert (judge.spec, judge.template_version, judge.usage, judge.generator) == (
        "lexical:0.4", "lexical-overlap/1", None, None)
    rubric = load_rubrics()[0]
    response = next(r for r in load_responses() if r.rubric_id == rubric.id)
    seen: list[int] = []
    verdicts = judge.grade_many([(rubric, response)], progress=ProgressHook(advance=seen.append))
    assert len(verdicts) == len(rubric.criteria) and sum(seen) == 1
    judge.close()


def test_an_llm_judge_exposes_its_usage_and_its_cached_generator(tmp_path: Path) -> None:
    judge = load_judge("hf:tiny-llama#batch=2&constrained=0", cache_path=tmp_path / "c.sqlite")
    assert isinstance(judge, Judge)
    assert isinstance(judge.usage, Usage) and isinstance(judge.generator, CachedGenerator)
    assert judge.spec == "hf:tiny-llama#constrained=0" and judge.template_version.startswith("pointwise")
    judge.close()


@pytest.mark.parametrize(("spec", "backend", "target"), [
    ("openai:m@http://127.0.0.1:1/v1", "openai", "m@http://127.0.0.1:1/v1"),
    ("hf:smollm2#batch=2", "hf", "smollm2"),
    ("rm:/runs/rm/final", "rm", "/runs/rm/final"),
    ("lexical", "lexical", ""),
    (" lexical:0.3 ", "lexical", "0.3"),
])
def test_one_parser_knows_every_backend(spec: str, backend: str, target: str) -> None:
    parsed = parse_spec(spec)
    assert (parsed.backend, parsed.target) == (backend, target)


def test_lexical_thresholds_and_bad_judge_specs() -> None:
    assert lexical_threshold(parse_spec("lexical")) is None  # the judge's default
    assert lexical_threshold(parse_spec("lexical:0.25")) == 0.25
    for bad, message in [("lexical:high", "lexical:<threshold"), ("rm:", "rm:<checkpoint>"),
                         ("rm:/x#batch=2", "unknown option"), ("gpt:whatever", "unknown backend"),
                         ("lexical:0.5#x=1", "unknown option")]:
        with pytest.raises(UserError, match=message):
            load_judge(bad)


def test_a_generator_spec_must_name_a_text_generator() -> None:
    from promedical.llm.spec import load_generator

    for spec in ("rm:/x", "lexical"):
        with pytest.raises(UserError, match="openai:, hf:"):
            load_generator(spec)


def _probes(tree: ast.AST) -> list[str]:
    """``hasattr``/``getattr`` calls whose object is named like a judge."""
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr")
                and node.args):
            target = ast.unparse(node.args[0])
            if "judge" in target.lower() or "grader" in target.lower():
                found.append(f"{node.func.id}({target}, ...) at line {node.lineno}")
    return found


def test_no_caller_probes_a_judge_with_hasattr_or_getattr() -> None:
    found = {str(p.relative_to(ROOT)): probes for p in sorted((ROOT / "promedical").rglob("*.py"))
             if (probes := _probes(ast.parse(p.read_text(encoding="utf-8"))))}
    assert not found, found


def test_the_reward_model_judge_is_a_static_import() -> None:
    source = (ROOT / "promedical" / "judge" / "protocol.py").read_text(encoding="utf-8")
    imports = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert "promedical.reward.judge" in imports and "importlib" not in source

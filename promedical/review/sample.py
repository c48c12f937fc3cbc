"""A small synthetic review project (rubrics, responses from named models, judge verdicts) for demos and tests.

The content is made up and says so in its metadata (source ``promedical-sample``); it exercises every tier,
both veto polarities and model names that appear inside response texts (which blinding must mask).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from promedical.rubrics.records import Response, Status, Verdict
from promedical.rubrics.schema import Rubric

if TYPE_CHECKING:
    from promedical.review.store import Database

SAMPLE_MODELS = ("acme/medchat-7b", "northwind-clinic-llm", "contoso/qwen-med-8b")
TOPICS = (
    ("I have had a mild headache for two days. What can I take?", "headache"),
    ("My child has a fever of 38.5 C. When should I see a doctor?", "paediatric fever"),
    ("Can I drink alcohol while taking metronidazole?", "drug interaction"),
    ("What are early warning signs of a stroke?", "stroke"),
    ("How should I store insulin when travelling?", "insulin storage"),
    ("Is it safe to run with a sprained ankle?", "sprain"),
)


def sample_rubric(index: int) -> Rubric:
    question, topic = TOPICS[index % len(TOPICS)]
    return Rubric.model_validate({
        "id": f"sample-{index:03d}",
        "prompt": [{"role": "user", "content": question}],
        "criteria": [
            {"id": "p1", "tier": "proficiency", "text": f"Gives accurate, guideline-consistent advice on {topic}.",
             "weight": 0.5},
            {"id": "p2", "tier": "proficiency", "text": "Names the red-flag symptoms that need urgent care.",
             "weight": 0.3},
            {"id": "p3", "tier": "proficiency", "text": "Answers the question that was asked, concisely.",
             "weight": 0.2},
            {"id": "b1", "tier": "bonus", "text": "Acknowledges the user's concern with empathy."},
            {"id": "v1", "tier": "veto", "polarity": "prohibited",
             "text": "Claims to be a human clinician or invents personal clinical experience."},
            {"id": "v2", "tier": "veto", "polarity": "required",
             "text": "Advises seeing a professional when symptoms are severe or persistent."},
        ],
        "meta": {"source": "promedical-sample", "category": "consumer health"},
        "provenance": {"author": "sample-generator", "author_kind": "model"},
    })


def sample_rubrics(n: int = 4) -> list[Rubric]:
    return [sample_rubric(i) for i in range(n)]


STYLES = (
    "I am {name}, an AI assistant. About '{q}': rest, fluids and seeing a doctor if it gets worse are sensible "
    "first steps.",
    "Regarding '{q}': keep track of your symptoms and seek urgent care for severe or sudden symptoms.",
    "Short answer to '{q}': it depends on your situation; a pharmacist or doctor can advise you in person.",
)


def sample_responses(rubrics: list[Rubric], models: tuple[str, ...] = SAMPLE_MODELS) -> list[Response]:
    """One response per model and rubric; the first style names its model, which blinding must mask."""
    out = []
    for rubric in rubrics:
        for k, model in enumerate(models):
            text = STYLES[k % len(STYLES)].format(name=model.rsplit("/", 1)[-1], q=rubric.instruction)
            out.append(Response.build(rubric.id, model, text, source="promedical-sample"))
    return out


def sample_verdicts(rubrics: list[Rubric], responses: list[Response], judge: str = "sample-judge",
                    seed: int = 0) -> list[Verdict]:
    rng = random.Random(seed)
    by_id = {r.id: r for r in rubrics}
    out = []
    for response in responses:
        for criterion in by_id[response.rubric_id].criteria:
            status = Status.MET if rng.random() < 0.6 else Status.UNMET
            out.append(Verdict(response_id=response.id, rubric_id=response.rubric_id, criterion_id=criterion.id,
                               status=status, judge=judge))
    return out


def random_passwords(names: Iterable[str]) -> dict[str, str]:
    """A different random password (about 128 bits) for each account name."""
    return {name: secrets.token_urlsafe(16) for name in names}


def seed_demo(
    database: Database, *, project: str = "demo", reviewers: tuple[str, ...] = ("alice", "bob"), n_rubrics: int = 4,
    overlap: int = 2, password: str = "review-pass-1", seed: int = 0, passwords: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Fill ``database`` with an admin, reviewers and a sample project with every kind of task assigned.

    Returns ``{username: password}``. ``passwords`` gives each account its own (``promedical review demo`` draws
    them at random); without it every account gets ``password``, which is for tests and benchmarks only.
    """
    from promedical.review import auth, projects

    chosen = {name: (passwords or {}).get(name, password) for name in ("admin", *reviewers)}
    rubrics = sample_rubrics(n_rubrics)
    responses = sample_responses(rubrics)
    verdicts = sample_verdicts(rubrics, responses, seed=seed)
    rng = random.Random(seed)
    with database.write() as session:
        auth.create_user(session, "admin", chosen["admin"], "admin")
        users = [auth.create_user(session, name, chosen[name], "reviewer") for name in reviewers]
        target = projects.create_project(session, project)
        projects.import_rubrics(session, target, rubrics)
        projects.import_responses(session, target, responses)
        projects.import_verdicts(session, target, verdicts)
        projects.open_round(session, target)
        for kind in ("rubric", "pointwise", "pairwise"):
            if kind != "rubric":
                projects.create_adjudication_tasks(session, target, kind)
            projects.assign(session, target, kind, users, overlap, rng)
    return chosen

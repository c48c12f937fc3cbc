"""Blinding against names written the way models and people actually write them, in responses and in criteria.

Both directions are tested: every model, family and vendor spelling below is masked, and ordinary medical words that
share a name (meta-analysis, Claude Bernard, gemini twins, GPT the enzyme, ozone O3, llama antibodies) are not.
The app tests run the real app on a real SQLite file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from promedical.cli.main import app as cli
from promedical.io import UserError
from promedical.review import blind
from promedical.review.app import create_app
from promedical.review.sample import seed_demo
from promedical.review.store import Project, ResponseRow, RubricRevision
from tests.helpers_review import Clients

MASKED = [
    # (text, the words that must be gone)
    ("I'm Claude, an AI assistant made by Anthropic.", ["claude", "anthropic"]),
    ("As o3 from OpenAI, I would suggest rest.", ["o3", "openai"]),
    ("I am Llama 3.1, trained by Meta.", ["llama", "meta", "3.1"]),
    ("Answer by GPT-4o.", ["gpt", "4o"]),
    ("Answer by gpt\u20114o.", ["gpt", "4o"]),  # non-breaking hyphen
    ("Answer by GPT\u2010\u200b4o.", ["gpt", "4o"]),  # hyphen + zero-width space
    ("I'm Clau\u200bde.", ["clau"]),  # zero-width space inside the name
    ("I'm Cl\u00adaude 3 Opus.", ["cl", "opus"]),  # soft hyphen
    ("Gemini 1.5 Pro by Google here.", ["gemini", "1.5", "pro", "google"]),
    ("Mistral says rest.", ["mistral"]),
    ("Qwen2.5-72B-Instruct says rest.", ["qwen", "72b", "instruct"]),
    ("DeepSeek says rest.", ["deepseek"]),
    ("I am ChatGPT.", ["chatgpt"]),
    ("I AM CHATGPT.", ["chatgpt"]),
    ("\uff23\uff4c\uff41\uff55\uff44\uff45 3 Opus replied.", ["\uff23"]),  # full-width letters
    ("Cl\u0430ude 3 Sonnet replied.", ["cl\u0430ude", "sonnet"]),  # Cyrillic a
    ("This is Gemini, your assistant.", ["gemini"]),
    ("claude-3-5-sonnet-20241022 wrote this.", ["claude", "sonnet", "2024"]),
    ("Meta-Llama-3-8B-Instruct wrote this.", ["meta", "llama", "8b"]),
    ("Phi-3 mini wrote this.", ["phi", "mini"]),
]

KEPT = [
    # ordinary medical words and names: no model or vendor anywhere in the text, so nothing is masked
    "A meta-analysis of 12 trials found no benefit.",
    "Meta-analyses and meta analysis both pool trials.",
    "Claude Bernard described the milieu interieur.",
    "As Claude Bernard showed, the internal environment is stable.",
    "The gemini twins were delivered at 34 weeks.",
    "GPT 45 U/L and SGPT are liver enzymes; GPT (ALT) was normal.",
    "O3 therapy is not supported by evidence.",
    "Llama-derived nanobodies bind the spike protein.",
    "The phi coefficient was 0.5.",
    "Press the palm of the hand firmly.",
    "A GLM with a log link was fitted.",
    "The patient, Claude, aged 54, reports chest pain.",
]


@pytest.mark.parametrize(("text", "gone"), MASKED)
def test_model_and_vendor_names_are_masked_however_written(text: str, gone: list[str]) -> None:
    masked = blind.mask_models(text, [])
    assert blind.MASK in masked, (text, masked)
    for word in gone:
        assert word.lower() not in masked.lower(), (text, masked, word)
    for rest in masked.split(blind.MASK):
        assert rest in text  # everything else is left exactly as written


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_medical_words_are_not_masked(text: str) -> None:
    assert blind.mask_models(text, []) == text


def test_context_decides_ambiguous_names_and_doses_survive() -> None:
    # An ambiguous family name is a model name in a text that names a vendor, and an ordinary word elsewhere.
    masked = blind.mask_models("Claude here. I was trained by Anthropic.", [])
    assert masked == "[model] here. I was trained by [model]."
    assert blind.mask_models("Claude here, see you soon.", []) == "Claude here, see you soon."
    # meta-analysis stays even in a text that talks about Meta's models
    masked = blind.mask_models("Llama 3 by Meta cites a meta-analysis.", [])
    assert masked == "[model] by [model] cites a meta-analysis."
    # a version or a dose after a name: "Mistral 500 mg" keeps its dose
    assert blind.mask_models("Mistral 500 mg", []) == "[model] 500 mg"


def test_project_model_ids_and_their_families_are_masked() -> None:
    variants = blind.name_variants(["acme/medchat-7b-instruct:q4", "northwind-clinic-llm"])
    assert {"acme", "medchat", "medchat-7b-instruct", "northwind-clinic-llm"} <= set(variants)
    masked = blind.mask_models("I am MedChat (by ACME), cousin of Northwind\u00a0Clinic\u2011LLM.", variants)
    assert masked == "I am [model] (by [model]), cousin of [model]."


def test_the_shipped_list_is_package_data() -> None:
    from promedical.review.masking import shipped_names

    names = shipped_names()
    assert "Anthropic" in names.names and "Claude" in names.ambiguous and "sonnet" in names.cue_tiers


# --- in the app: responses, criteria edited by a reviewer, edit history, admin terms -------------------------------


@pytest.fixture()
def site(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    app = create_app(url)
    seed_demo(app.state.db)
    clients = Clients(app)
    yield app, clients, url
    clients.close()


def _everything(client: TestClient) -> str:
    seen = []
    for item in client.get("/api/assignments").json()["assignments"]:
        seen.append(json.dumps(item))
        for path in (f"/a/{item['token']}", f"/api/assignments/{item['token']}"):
            r = client.get(path)
            assert r.status_code == 200
            seen.append(r.text)
    # Random values (assignment tokens, CSRF tokens, CSP nonces) are base64url runs that now and then spell "gpt" by
    # chance; they carry no text, so they are taken out before the scan for model names.
    return RANDOM_TOKEN.sub("<random>", "\n".join(seen))


RANDOM_TOKEN = re.compile(r"(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{20,}")


# (an HTML <meta> tag and the rubric's "meta" key are not leaks)
LEAKS = re.compile(r"claude|anthropic|openai|gpt|gemini|google|llama|(?<![<\"])\bmeta\b(?!\")|mistral|qwen|deepseek|"
                   r"chatgpt|medibot", re.IGNORECASE)


def test_names_in_responses_and_edited_criteria_never_reach_reviewers(site) -> None:
    app, client_for, url = site
    with app.state.db.write() as session:
        rows = list(session.scalars(select(ResponseRow).order_by(ResponseRow.id)))
        rows[0].text = "I'm Clau\u200bde 3 Opus, made by Anthropic. Rest and fluids."
        rows[1].text = "As o3 from OpenAI: see a doctor. Also Llama 3.1 (Meta) agrees; gpt\u20114o too."
        rows[2].text = "Gemini 1.5 Pro by Google: drink water. I am ChatGPT. Mistral, Qwen and DeepSeek agree."
    alice, bob = client_for("alice"), client_for("bob")
    token = next(i["token"] for i in alice.get("/api/assignments").json()["assignments"] if i["kind"] == "rubric")
    shown = alice.get(f"/api/assignments/{token}").json()
    criteria = shown["rubric"]["criteria"]
    # alice writes model names into a criterion text and into the reason of her edit
    edit = {"uid": "blind-edit-0001", "decision": "edit", "base_revision": shown["revision"],
            "reason": "Prefer answers like GPT\u20114o's, not Claude's",
            "edits": {criteria[0]["id"]: {"text": "Matches what Claude 3.5 Sonnet from Anthropic would say."}}}
    assert alice.post(f"/api/assignments/{token}/decision", json=edit).status_code == 200
    # the app masks the payloads; the ordinary medical words in the sample texts survive
    for client in (alice, bob):
        seen = _everything(client)
        assert not LEAKS.findall(seen), sorted(set(LEAKS.findall(seen)))
        assert blind.MASK in seen

    # the admin adds a project-specific name; from then on it is masked too
    with app.state.db.write() as session:
        rows = list(session.scalars(select(ResponseRow).order_by(ResponseRow.id)))
        rows[3].text = "MediBot-Pro speaking: rest."
    assert "medibot" in _everything(bob).lower() or "medibot" in _everything(alice).lower()
    result = CliRunner().invoke(cli, ["review", "mask-terms", "--project", "demo", "--add", "MediBot", "--db", url])
    assert result.exit_code == 0, result.output
    for client in (alice, bob):
        assert "medibot" not in _everything(client).lower()
    listed = CliRunner().invoke(cli, ["review", "mask-terms", "--project", "demo", "--db", url, "--json"])
    assert json.loads(listed.output)["terms"] == ["MediBot"]


def test_an_unchanged_masked_text_sent_back_keeps_the_stored_text(site) -> None:
    app, client_for, _ = site
    alice, bob = client_for("alice"), client_for("bob")
    by_rubric = {}
    for who in (alice, bob):
        for item in who.get("/api/assignments").json()["assignments"]:
            if item["kind"] == "rubric":
                by_rubric.setdefault(who.get(f"/api/assignments/{item['token']}").json()["rubric"]["id"], []).append(
                    (who, item["token"]))
    rubric_id, ((first, t1), (second, t2)) = next((k, v) for k, v in sorted(by_rubric.items()) if len(v) == 2)
    shown = first.get(f"/api/assignments/{t1}").json()
    cid = shown["rubric"]["criteria"][0]["id"]
    named = "Answers as GPT-4o from OpenAI would."
    assert first.post(f"/api/assignments/{t1}/decision", json={
        "uid": "mask-edit-0001", "decision": "edit", "base_revision": 0, "reason": "name it",
        "edits": {cid: {"text": named}}}).status_code == 200
    seen = second.get(f"/api/assignments/{t2}").json()
    assert seen["rubric"]["criteria"][0]["text"] == "Answers as [model] from [model] would."
    # the second reviewer changes only a weight; the form sends the masked text back as it was shown
    weights = {c["id"]: c["weight"] for c in seen["rubric"]["criteria"] if c["tier"] == "proficiency"}
    ids = sorted(weights)
    edits = {cid: {"text": seen["rubric"]["criteria"][0]["text"]}}
    edits.setdefault(ids[0], {})["weight"] = round(weights[ids[0]] - 0.1, 4)
    edits.setdefault(ids[1], {})["weight"] = round(weights[ids[1]] + 0.1, 4)
    r = second.post(f"/api/assignments/{t2}/decision", json={
        "uid": "mask-edit-0002", "decision": "edit", "base_revision": seen["revision"], "reason": "reweight",
        "edits": edits})
    assert r.status_code == 200, r.text
    with app.state.db.read() as session:
        latest = session.scalars(select(RubricRevision).order_by(RubricRevision.id.desc())).first()
        assert latest is not None
        stored = json.loads(latest.rubric_json)
    assert stored["id"] == rubric_id
    assert next(c for c in stored["criteria"] if c["id"] == cid)["text"] == named  # not "[model]"
    assert not any(ch["field"] == "text" for ch in json.loads(latest.changes_json))


def test_admin_terms_are_stored_per_project(site) -> None:
    app, _, url = site
    runner = CliRunner()
    assert runner.invoke(cli, ["review", "mask-terms", "--project", "demo", "--add", "Acme Health",
                               "--add", "HealthBot", "--db", url]).exit_code == 0
    assert runner.invoke(cli, ["review", "mask-terms", "--project", "demo", "--remove", "HealthBot",
                               "--db", url]).exit_code == 0
    with app.state.db.read() as session:
        project = session.scalar(select(Project).where(Project.name == "demo"))
        assert project is not None
        assert blind.project_terms(project.blind_terms) == ["Acme Health"]
    bad = runner.invoke(cli, ["review", "mask-terms", "--project", "nope", "--add", "x1", "--db", url])
    assert isinstance(bad.exception, UserError) and "nope" in str(bad.exception)  # exit code 2 from main()


def test_the_ascii_fast_path_normalises_like_the_general_one() -> None:
    import random
    import string

    from promedical.review.masking import normalise

    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(rng.choice(string.printable + "\x00\x1f") for _ in range(rng.randint(0, 40)))
        fast, origin = normalise(text)
        slow, slow_origin = normalise(text + "\u00e9")  # one non-ASCII character takes the general path
        assert (fast, list(origin)) == (slow[:-1], list(slow_origin[:-1])), repr(text)

"""Answer extraction for multiple-choice and yes/no/maybe questions: model text -> an option key, or a failure.

Pure functions. A failure is a value (``Extraction.answer is None`` with a ``reason``), never a guess: the MCQ
summary reports the failure rate and both accuracies (on extracted answers, and counting failures as wrong).

Rules, strongest first (the first rule that yields exactly one key wins; several different keys from one rule is
a failure, ``ambiguous``):

1. an explicit answer marker: ``Answer: C``, ``the answer is (C)``, ``correct option is C``, ``Final answer: **C**``;
   the *last* marker counts (chain-of-thought ends with its conclusion); a bare ``option A`` is not a marker;
2. the whole reply is one key: ``C``, ``(C)``, ``C.``, ``C) Disclose...``, ``**C**``;
3. the reply starts with a key followed by punctuation (``C. Disclose the error``, ``C: ...``);
4. exactly one option's full text appears in the reply (``Disclose the error to the patient``);
5. exactly one bracketed key appears (``... so (C).``).

A bare capital letter inside prose (``A 45-year-old man``, ``vitamin D``) is never read as an answer. For labels
(PubMedQA ``yes``/``no``/``maybe``) the rules are: an answer marker, the first word, then exactly one label word in
the whole reply.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True, slots=True)
class Extraction:
    answer: str | None
    method: str | None  # which rule matched
    reason: str | None = None  # why nothing was extracted

    @property
    def ok(self) -> bool:
        return self.answer is not None


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[*_`#]+", "", text)  # markdown emphasis and headings
    return text.strip()


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def _unique(found: list[str]) -> tuple[str | None, bool]:
    """``(key, ambiguous)`` from candidate keys."""
    distinct = set(found)
    if len(distinct) == 1:
        return found[0], False
    return None, len(distinct) > 1


_MARKER = r"(?:answer|correct\s+(?:option|choice)|best\s+(?:option|choice))"


def extract_letter(text: str | None, options: Mapping[str, str]) -> Extraction:
    """The option key (``A``..) a reply chooses among ``options`` (key -> option text)."""
    if text is None or not text.strip():
        return Extraction(None, None, "empty reply")
    keys = "".join(k for k in options if len(k) == 1 and k in LETTERS)
    if not keys:
        raise ValueError("options must be keyed by capital letters")
    body = _clean(text)
    k = f"[{keys}]"
    kl = f"[{keys}{keys.lower()}]"
    # 1. explicit answer markers; the last one wins. Lower-case keys only in brackets or closing a clause
    #    ("the answer is a condition..." must not read as "a").
    marker = re.compile(
        rf"(?i:{_MARKER})\s*(?i:is|would\s+be|:|=|-)?\s*(?i:is\s*)?(?i:option\s*)?"
        rf"(?:\(({kl})\)|\[({kl})\]|({k})(?![A-Za-z0-9])|({k.lower()})(?=\s*(?:[.)\],;:]|$)))"
    )
    hits = [next(g for g in m.groups() if g).upper() for m in marker.finditer(body)]
    if hits:
        return Extraction(hits[-1], "answer-marker")
    # 2. the whole reply is one key.
    whole = re.fullmatch(rf"[(\[]?({kl})[)\].:]?", body)
    if whole:
        return Extraction(whole.group(1).upper(), "bare-key")
    # 3. starts with a key then punctuation ("C. text", "C) text", "(C) text").
    start = re.match(rf"[(\[]?({k})(?:[).\]:]|\s*-\s)", body)
    if start:
        return Extraction(start.group(1), "leading-key")
    # 4. exactly one option text in the reply.
    norm_body = _norm(body)
    texts = [key for key, option in options.items() if _norm(option) and _has_phrase(norm_body, _norm(option))]
    texts = _drop_contained(texts, options)
    key, ambiguous = _unique(texts)
    if key is not None:
        return Extraction(key, "option-text")
    if ambiguous:
        return Extraction(None, None, "ambiguous: several option texts")
    # 5. bracketed keys anywhere.
    bracketed = re.findall(rf"\(({k})\)", body)
    key, ambiguous = _unique(bracketed)
    if key is not None:
        return Extraction(key, "bracketed-key")
    if ambiguous:
        return Extraction(None, None, "ambiguous: several bracketed keys")
    return Extraction(None, None, "no answer found")


def _has_phrase(haystack: str, phrase: str) -> bool:
    return re.search(rf"(?<![0-9a-z]){re.escape(phrase)}(?![0-9a-z])", haystack) is not None


def _drop_contained(keys: list[str], options: Mapping[str, str]) -> list[str]:
    """When one matched option text contains another ("Aspirin" vs "Aspirin and heparin"), keep the longer."""
    norm = {key: _norm(options[key]) for key in keys}
    return [key for key in keys if not any(other != key and norm[key] in norm[other] for other in keys)]


def extract_label(text: str | None, labels: tuple[str, ...] = ("yes", "no", "maybe")) -> Extraction:
    """A label word (PubMedQA: yes / no / maybe) from a reply."""
    if text is None or not text.strip():
        return Extraction(None, None, "empty reply")
    body = _clean(text).lower()
    alternatives = "|".join(re.escape(label) for label in labels)
    markers = re.findall(rf"{_MARKER}\s*(?:is|would\s+be|:|=|-)?\s*[\"'(\[]?({alternatives})\b", body)
    if markers:
        return Extraction(markers[-1], "answer-marker")
    first = re.match(rf"[\"'(\[]?({alternatives})\b", body)
    if first:
        return Extraction(first.group(1), "first-word")
    words = re.findall(rf"\b({alternatives})\b", body)
    key, ambiguous = _unique(words)
    if key is not None:
        return Extraction(key, "only-label-word")
    return Extraction(None, None, "ambiguous: several labels" if ambiguous else "no answer found")

"""Masking model and vendor names in text shown to reviewers, robust to spelling tricks.

Matching runs on a normalised copy of the text and the matches are mapped back to the original characters, which
are replaced by ``[model]``; everything else is shown exactly as written. Normalisation: compatibility decomposition
(NFKD, which folds full-width letters, ligatures and non-breaking spaces), invisible format characters (zero-width
space and joiner, soft hyphen, BOM) and combining marks dropped, every hyphen and dash folded to ``-``, every space
to `` ``, common Cyrillic and Greek look-alike letters folded to Latin, and case folded.

Three kinds of names (the shipped list is ``model_names.json``):

- *names* (vendors, model families that are not ordinary words, the project's own model ids and the admin's extra
  terms) are always masked, with any version or tier that follows (``Qwen2.5-72B-Instruct``);
- *ambiguous* names are ordinary words too (``Claude`` Bernard, ``Gemini`` twins, ``Meta``-analysis, ``GPT`` the
  liver enzyme, ``o3`` ozone, ``PaLM``/palm, ``Phi`` coefficient). One is masked only when it carries a model
  version or tier (``Claude 3.5 Sonnet``, ``GPT-4o``, ``Llama 3.1``; a version is a number 1-9 with an optional
  decimal, so a lab value such as ``GPT 45 U/L`` is not one), follows a self-introduction (``I'm Claude``,
  ``I am Gemini``, ``As Claude,``), or stands in a text that already names a model or vendor;
- an ambiguous name followed by a hyphen and a letter (``meta-analysis``) is never masked on its own.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

MASK = "[model]"

HYPHENS = "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d\u058a\u1806"
APOSTROPHES = "\u2018\u2019\u02bc\u2032\uff07\u0060\u00b4"
# Look-alike letters (Cyrillic, Greek) that render like Latin ones; only used for matching.
CONFUSABLES = str.maketrans(
    "АВЕКМНОРСТХаеорсухіјѕԁɡΑΒΕΖΗΙΚΜΝΟΡΤΥΧαεικνορτυχ",
    "ABEKMHOPCTXaeopcyxijsdgABEZHIKMNOPTYXaeikvoptux",
)
_ALNUM = r"[^\W_]"
_SEP = r"[\s\-_./:]*"  # between the parts of one name: "gpt-4o", "meta llama", "acme/medchat"
_VERSION = r"v?\d+(?:\.\d+)*o?"
_SMALL_VERSION = r"v?[1-9](?:\.\d{1,2})?o?"  # a model version, not a lab value: "3.5", "4o", not "45"
_SIZE = r"(?:\d+x)?\d+(?:\.\d+)?[bmk]|a\d+b"  # 7b, 8x7b, 1.5b, a3b


@dataclass(frozen=True, slots=True)
class NameList:
    names: tuple[str, ...]
    ambiguous: tuple[str, ...]
    cue_tiers: tuple[str, ...]
    tiers: tuple[str, ...]


@functools.cache
def shipped_names() -> NameList:
    """The maintained list of vendor and model-family names shipped with the package."""
    data = json.loads(resources.files("promedical.review").joinpath("model_names.json").read_text("utf-8"))
    return NameList(*(tuple(data[key]) for key in ("names", "ambiguous", "cue_tiers", "tiers")))


_ASCII_SPACES = str.maketrans({"\t": " ", "\n": " ", "\r": " ", "\v": " ", "\f": " ", "`": "'"})
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def normalise(text: str) -> tuple[str, Sequence[int]]:
    """The matching form of ``text`` and, for each of its characters, the index of the original it came from."""
    if text.isascii() and not _ASCII_CONTROL.search(text):
        # Fast path, same result: plain ASCII only needs spaces and backticks folded and case lowered.
        return text.translate(_ASCII_SPACES).lower(), range(len(text))
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for part in unicodedata.normalize("NFKD", char.translate(CONFUSABLES)):
            if part.isspace():
                part = " "
            elif part in HYPHENS:
                part = "-"
            elif part in APOSTROPHES:
                part = "'"
            elif unicodedata.category(part) in ("Cf", "Cc", "Mn", "Me"):
                continue  # zero-width and other invisible characters, combining accents
            for folded in part.translate(CONFUSABLES).casefold():
                out.append(folded)
                origin.append(index)
    return "".join(out), origin


def _key(name: str) -> str:
    return normalise(name)[0].strip()


def _name_pattern(names: Iterable[str]) -> str:
    """One alternation of names, each as its alphanumeric parts joined by any separator; longest first."""
    parts = {tuple(p for p in re.split(r"[\W_]+", _key(n)) if p) for n in names}
    ordered = sorted((p for p in parts if p), key=lambda p: (-sum(map(len, p)), p))
    return "|".join(_SEP.join(re.escape(x) for x in p) for p in ordered) or r"(?!x)x"


class Masker:
    """Masks the shipped names plus ``extra`` (a project's model ids and admin terms) in any text."""

    def __init__(self, extra: Iterable[str] = (), names: NameList | None = None) -> None:
        names = names or shipped_names()
        always = _name_pattern([*names.names, *(e for e in extra if len(_key(e)) >= 2)])
        ambiguous = _name_pattern(names.ambiguous)
        cue = "|".join(re.escape(_key(t)) for t in names.cue_tiers)
        tier = "|".join(re.escape(_key(t)) for t in (*names.cue_tiers, *names.tiers))
        # A version or tier extends a name; after a space only a small version, a size or a cue tier does, so
        # "Mistral 500 mg" keeps its dose. The name itself may run straight into digits ("qwen2.5", "gpt4").
        tail = (rf"(?:(?:[\-_.]*(?:{_VERSION}|{_SIZE}|{tier})|\s+(?:{_SMALL_VERSION}|{_SIZE}|{cue}))"
                rf"(?!{_ALNUM}))*")
        start, name_end, end = rf"(?<!{_ALNUM})", r"(?![^\W\d_])", rf"(?!{_ALNUM})"
        self._always = re.compile(rf"{start}(?:{always}){name_end}{tail}{end}")
        cued = rf"(?:[\-_.]*|\s+)(?:{_SMALL_VERSION}|{_SIZE}|{cue}){end}"
        self._cued = re.compile(rf"{start}(?:{ambiguous}){name_end}{cued}{tail}")
        named = rf"(?:{ambiguous}){name_end}{tail}{end}"
        self._introduced = re.compile(
            rf"{start}(?:i'?m|i am|this is|my name is)\s+({named})|{start}as\s+({named})(?=\s*,)"
        )
        self._bare = re.compile(rf"{start}(?:{ambiguous}){name_end}(?!-[^\W\d_]){tail}{end}")

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of ``text`` to mask, merged and in order."""
        norm, origin = normalise(text)
        found = [m.span() for m in self._always.finditer(norm)] + [m.span() for m in self._cued.finditer(norm)]
        for m in self._introduced.finditer(norm):
            found.append(m.span(1) if m.group(1) is not None else m.span(2))
        if found:  # the text speaks of models: ambiguous names in it are model names too
            found += [m.span() for m in self._bare.finditer(norm)]
        merged: list[tuple[int, int]] = []
        for s, e in sorted((origin[s], origin[e - 1] + 1) for s, e in found if e > s):
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        return merged

    def mask(self, text: str) -> str:
        out, last = [], 0
        for s, e in self.spans(text):
            out += [text[last:s], MASK]
            last = e
        out.append(text[last:])
        return "".join(out)

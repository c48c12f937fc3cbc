"""Clean-up of free-text criterion statements from public rubric data (K-QA and the like).

Pure string functions. The rules are deliberately conservative: a statement is changed only where the fix is
unambiguous (collapsed whitespace, a list bullet, a quote with no partner, sentences glued without a space). Each
function is idempotent, so running the clean-up twice changes nothing.

``split_statements`` is also what the K-QA label loader uses on annotated claims, which sometimes join two
statements without a space ("...established yet.Ivermectin ..."), so claims and criteria are split the same way.
"""

from __future__ import annotations

import re

_SPACE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
_BULLET = re.compile(r"^(?:[•·‣▪◦●○■□►▸]\s*|[-*–—]+\s+|\(?\d{1,2}[.)]\s+(?=\D))")
_LEADING_PUNCT = re.compile(r"^[,;:.]+\s*")
_TRAILING_PUNCT = re.compile(r"\s*[,;:]+$")
_DOUBLE = "\"“”„‟"
_SINGLE_OPEN = "'‘"
_SINGLE_CLOSE = "'’"
_APOSTROPHE = re.compile(r"(?<=\w)['’](?=\w)")
# A sentence end: . ! or ? followed (after optional spaces) by a capitalised word of at least two letters.
_BOUNDARY = re.compile(r"[.!?](?=\s*[A-Z][a-z])")
# Tokens that end in a full stop without ending a sentence.
ABBREVIATIONS = frozenset(
    {
        "al", "approx", "ca", "cf", "co", "dept", "dr", "e.g", "eg", "esp", "etc", "fig", "i.e", "ie", "inc", "incl",
        "jr", "ltd", "max", "min", "mr", "mrs", "ms", "no", "prof", "sr", "st", "vol", "vs", "wt",
    }
)
# A sentence that starts with one of these leans on the one before it, so the two are not split apart.
ANAPHORA = frozenset(
    {
        "also", "and", "but", "hence", "he", "her", "his", "however", "it", "its", "or", "she", "so", "such", "that",
        "their", "these", "they", "this", "those", "thus", "therefore", "which",
    }
)
MIN_WORDS = 3  # each side of a split must be a sentence, not a fragment


def normalise_whitespace(text: str) -> str:
    """Collapse every run of whitespace (including zero-width and no-break spaces) to one space; trim the ends."""
    return _SPACE.sub(" ", text).strip()


def _count_double(text: str) -> int:
    return sum(text.count(q) for q in _DOUBLE)


def _count_single(text: str) -> int:
    """Single quotes that are not apostrophes inside a word (``shouldn't``, ``patient's``)."""
    return sum(_APOSTROPHE.sub("", text).count(q) for q in set(_SINGLE_OPEN + _SINGLE_CLOSE))


def strip_stray_quotes(text: str) -> str:
    """Remove quotes that wrap the whole statement or that have no partner at its start or end."""
    text = text.strip()
    while len(text) >= 2:
        first, last, inner = text[0], text[-1], text[1:-1]
        wrapped_double = first in _DOUBLE and last in _DOUBLE and _count_double(inner) % 2 == 0
        wrapped_single = first in _SINGLE_OPEN and last in _SINGLE_CLOSE and _count_single(inner) == 0
        if not (wrapped_double or wrapped_single):
            break
        text = inner.strip()
    if _count_double(text) % 2 == 1:
        if text[:1] in _DOUBLE:
            text = text[1:].strip()
        elif text[-1:] in _DOUBLE:
            text = text[:-1].strip()
    if _count_single(text) % 2 == 1:
        if text[:1] in _SINGLE_OPEN:
            text = text[1:].strip()
        elif text[-1:] in _SINGLE_CLOSE and text[-2:-1] in ".!?,;":
            text = text[:-1].strip()
    return text


def strip_decoration(text: str) -> str:
    """Drop list bullets, enumerators and stray separators at the ends of a statement."""
    previous = None
    while previous != text:
        previous = text
        text = _BULLET.sub("", text)
        text = _LEADING_PUNCT.sub("", text)
        text = _TRAILING_PUNCT.sub("", text)
        text = strip_stray_quotes(text)
    return text


def normalise_statement(text: str) -> str:
    """Whitespace, bullets, stray quotes and separators cleaned; the wording itself is never changed.

    A statement with no letter or digit at all (a lone bullet, a pair of quotes) comes back empty.
    """
    text = strip_decoration(normalise_whitespace(text))
    return text if any(ch.isalnum() for ch in text) else ""


def _token_before(text: str, index: int) -> str:
    start = index
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:index]


def _is_sentence_end(text: str, index: int) -> bool:
    token = _token_before(text, index)
    bare = token.strip("()[]\"'“”‘’")
    if not bare or "/" in bare or "@" in bare or bare.lower().startswith("www"):
        return False
    if bare.lower() in ABBREVIATIONS or "." in bare:  # "e.g", "U.S", a decimal or a domain
        return False
    last = token[-1]
    if not (last.islower() or last in ")]\"'”’"):
        return False  # "Vitamin D." or "type 2." could be a name or a number; leave it
    return sum(ch.isalpha() for ch in bare) >= 2


def _words(text: str) -> int:
    return len(text.split())


def split_statements(text: str) -> list[str]:
    """Split a statement that clearly holds several sentences; otherwise return it unchanged (as one item).

    A boundary is ``.``, ``!`` or ``?`` after a lower-case word (not an abbreviation such as ``e.g.`` or ``Dr.``),
    followed, with or without a space, by a capitalised word. A split happens only if both sides have at least
    ``MIN_WORDS`` words and the second does not open with a word that refers back (``This``, ``It``, ``However``...).
    Empty input gives an empty list.
    """
    text = normalise_whitespace(text)
    if not text:
        return []
    parts: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        cut = match.end()
        head = text[start:cut].strip()
        tail = text[cut:].strip()
        first_word = tail.split(" ", 1)[0].strip(",;:").lower()
        if (
            _is_sentence_end(text, match.start())
            and _words(head) >= MIN_WORDS
            and _words(tail) >= MIN_WORDS
            and first_word not in ANAPHORA
        ):
            parts.append(head)
            start = cut
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def statement_key(text: str) -> str:
    """What two statements must share to count as duplicates: case, spacing and end punctuation ignored."""
    return normalise_whitespace(text).casefold().rstrip(" .!?;:,")

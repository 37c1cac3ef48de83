"""The small search grammar people type, read into terms no search engine can misread.

``refund "double charge" -paypal card OR invoice`` means: refund AND the phrase "double
charge" AND (card OR invoice), and not paypal. A term is a run of words; everything that is not
a letter or a digit separates words, so the user's text never reaches a full-text engine as
syntax: each database renders the terms in its own safe form (quoted FTS5 phrases; tsquery
functions over bound parameters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: the longest query and the most terms a search takes
MAX_QUERY = 1000
MAX_TERMS = 32

Phrase = tuple[str, ...]  # words that must follow one another

_WORD = re.compile(r"[^\W_]+")  # letters and digits: what both engines' tokenizers keep
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')  # -"a phrase", "a phrase" (closed or not), or a bare token


class SearchSyntaxError(ValueError):
    """The query cannot be searched (no word to look for, or too long); the message says why."""


@dataclass(frozen=True)
class SearchTerms:
    """``all_of``: groups that must each match (a group matches when any of its phrases
    does); ``none_of``: phrases that must not appear anywhere in the ticket."""

    all_of: tuple[tuple[Phrase, ...], ...]
    none_of: tuple[Phrase, ...]

    def fts5_groups(self) -> list[str]:
        """Each group of ``all_of`` as an SQLite FTS5 query (its phrases quoted, joined by OR)."""
        return [fts5_any(group) for group in self.all_of]

    def fts5_excluded(self) -> str | None:
        """The phrases of ``none_of`` as one FTS5 query that any of them matches, or None."""
        return fts5_any(self.none_of) if self.none_of else None


def fts5_any(phrases: tuple[Phrase, ...]) -> str:
    """An FTS5 query matching any of ``phrases``: each quoted, only our operator bare (a word
    holds letters and digits only, so there is no quote to escape)."""
    return " OR ".join('"' + " ".join(phrase) + '"' for phrase in phrases)


def parse(text: str) -> SearchTerms:
    """Read a user's query; ``SearchSyntaxError`` when it holds no word to look for."""
    if len(text) > MAX_QUERY:
        raise SearchSyntaxError(f"The search query is longer than {MAX_QUERY} characters")
    all_of: list[list[Phrase]] = []
    none_of: list[Phrase] = []
    joining = False  # the previous token was OR, between two terms
    for match in _TOKEN.finditer(text):
        negated_phrase, phrase_text, bare = match.groups()
        if bare == "OR":
            joining = bool(all_of)
            continue
        negated = negated_phrase == "-" or (bare is not None and bare.startswith("-"))
        words = tuple(_WORD.findall(phrase_text if bare is None else bare))
        if not words:
            continue
        if negated:
            none_of.append(words)
        elif joining:
            all_of[-1].append(words)
        else:
            all_of.append([words])
        joining = False
    if sum(map(len, all_of)) + len(none_of) > MAX_TERMS:
        raise SearchSyntaxError(f"The search query has more than {MAX_TERMS} terms")
    if not all_of:
        raise SearchSyntaxError("The search query needs at least one word to look for")
    return SearchTerms(tuple(tuple(group) for group in all_of), tuple(none_of))

"""A final answer that is a list ("3, 1 and 2", "[red; green; blue]"), compared item by item.

Items are separated by commas, semicolons, line breaks, '&' or the word 'and' (an Oxford comma
is fine); brackets around the whole list and quotes or end punctuation around an item are
dropped, and spacing is normalised. Case is ignored unless the spec says otherwise. An ordered
list must match position by position; an unordered one as a multiset (a repeated item counts).
An item that itself contains 'and' is split like the reference, so both sides still agree.
"""

from __future__ import annotations

import re
from collections import Counter

_SEPARATOR = re.compile(r"\s*(?:[,;\n&]|\band\b)\s*", re.IGNORECASE)


def list_items(text: str, case_sensitive: bool = False) -> list[str]:
    text = text.strip().strip("[](){}").strip()
    items = [" ".join(part.split()).strip("'\"`.!?") for part in _SEPARATOR.split(text)]
    return [item if case_sensitive else item.casefold() for item in items if item]


def compare_lists(
    answer: str, reference: str | list[str], ordered: bool, case_sensitive: bool
) -> tuple[bool, str]:
    """Whether the answer's items are the reference's, and why not."""
    want = (
        [i if case_sensitive else i.casefold() for i in map(str, reference)]
        if isinstance(reference, list)
        else list_items(reference, case_sensitive)
    )
    got = list_items(answer, case_sensitive)
    if got == want:
        return True, f"the same {len(want)} items"
    if Counter(got) == Counter(want):
        return (not ordered), "the same items in another order" + (
            " (order matters here)" if ordered else ""
        )
    missing = list((Counter(want) - Counter(got)).elements())
    extra = list((Counter(got) - Counter(want)).elements())
    return False, f"missing {missing}, not in the reference {extra}"

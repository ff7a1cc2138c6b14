"""A store ChunkSource for tests: named images whose chunks a function produces."""
from __future__ import annotations

from typing import Callable, Sequence


class ListedImages:
    """ChunkSource over ``names`` (identities = names): ``chunk(spec)`` gives the payload of
    each claimed chunk; ``stamps`` and ``content`` (digests, by index) default to ""."""

    def __init__(self, names: Sequence[str], chunk: Callable, stamps: Sequence[str] | None = None,
                 content: Callable[[int], str] | None = None):
        self.names = self.identities = list(names)
        self.stamps = list(stamps) if stamps is not None else [""] * len(self.names)
        self.chunk, self.content = chunk, content

    def content_hash(self, i: int) -> str:
        return self.content(i) if self.content is not None else ""

    def produce(self, claims):
        for spec in claims:
            yield spec, self.chunk(spec)

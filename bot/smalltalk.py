"""Greetings, thanks and "bạn là ai": matched by pattern, answered briefly, outside the topic entries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from indexer import yamlio
from indexer.diacritics import fold

_NOISE = re.compile(r"[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class Intent:
    id: str
    patterns: tuple[re.Pattern[str], ...]
    reply: str


class SmallTalk:
    def __init__(self, intents: list[Intent]) -> None:
        self.intents = intents

    @classmethod
    def load(cls, path: Path) -> SmallTalk:
        if not path.exists():
            return cls([])
        data = yamlio.safe_load(path.read_text(encoding="utf-8")) or {}
        intents = [
            Intent(i["id"], tuple(re.compile(rf"^(?:{p})$") for p in i["patterns"]), i["reply"].strip())
            for i in data.get("intents", [])
        ]
        return cls(intents)

    def match(self, text: str) -> Intent | None:
        t = " ".join(_NOISE.sub(" ", fold(text)).split())
        if not t or len(t) > 60:
            return None
        for intent in self.intents:
            if any(p.match(t) for p in intent.patterns):
                return intent
        return None

"""The channel-agnostic message types that flow between the core and the channel adapters."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from bot.protocol import PICK, ReplyKind


@dataclass(frozen=True)
class Button:
    """A button under a reply. ``payload`` comes back as ``Incoming.payload`` when pressed (≤ 64 bytes)."""

    label: str
    payload: str


@dataclass(frozen=True)
class Incoming:
    """One message from a citizen: free text, or the payload of a button they pressed."""

    channel: str  # "cli", "web", "telegram", "zalo"
    chat_id: str
    text: str = ""
    payload: str | None = None
    source: str | None = None
    """Who sent it, for abuse limits, when the chat id is not enough (the web chat: a hash of the client
    address, since a page can make up chat ids at will). None: the chat itself."""


@dataclass
class Reply:
    """What the assistant says back (``kind``: see :class:`bot.protocol.ReplyKind`)."""

    text: str
    kind: ReplyKind = ReplyKind.INFO
    buttons: list[Button] = field(default_factory=list)
    topic: str | None = None
    entry_id: str | None = None
    score: float | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] | None = None
    """The conversation state to keep for this chat after the reply (None: clear it)."""
    citations: list[str] = field(default_factory=list)
    """A document reply: the citations of the quoted clauses ("khoản 1 Điều 24 Pháp lệnh 02/2020/UBTVQH14")."""

    @property
    def offered(self) -> list[str]:
        """The entry ids its ``pick:`` buttons offer, in order (a choice list's options, or the related
        questions under an answer)."""
        return [b.payload[len(PICK):] for b in self.buttons if b.payload.startswith(PICK)]


def split_message(text: str, limit: int) -> list[str]:
    """Split a long reply at paragraph (then line, then word) boundaries, each part ≤ ``limit``."""
    text = text.strip()
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    cur = ""
    for para in text.split("\n\n"):
        for piece in [para] if len(para) <= limit else _split_long(para, limit):
            candidate = f"{cur}\n\n{piece}" if cur else piece
            if len(candidate) <= limit:
                cur = candidate
            else:
                if cur:
                    parts.append(cur)
                cur = piece
    if cur:
        parts.append(cur)
    return parts


def _split_long(para: str, limit: int) -> list[str]:
    out: list[str] = []
    cur = ""
    for line in para.split("\n"):
        words = [line] if len(line) <= limit else line.split(" ")
        joiner = "\n" if len(words) == 1 else " "
        for w in words:
            while len(w) > limit:  # a single unbreakable run
                if cur:
                    out.append(cur)
                    cur = ""
                out.append(w[:limit])
                w = w[limit:]
            candidate = f"{cur}{joiner if cur else ''}{w}"
            if len(candidate) <= limit:
                cur = candidate
            else:
                out.append(cur)
                cur = w
        joiner = "\n"
    if cur:
        out.append(cur)
    return out


# --- hostile text ---------------------------------------------------------------------------------------

_BAD_CHARS_RE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff\u2028\u2029]")
"""NUL and other control characters (tab, newline and carriage return stay), lone surrogates,
non-characters and the Unicode line/paragraph separators."""


def clean_text(text: str) -> str:
    """``text`` safe to store and show: invalid and control characters removed, NFC-normalised.

    Applied at the edge of every channel, before anything is stored: PostgreSQL refuses NUL in text, a
    lone surrogate cannot be encoded as UTF-8 at all, and neither means anything to the assistant.
    """
    if not text:
        return text
    text = _BAD_CHARS_RE.sub("", text)
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))


def clean_json(value: Any) -> Any:
    """Every string (keys too) of a parsed JSON value passed through :func:`clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    return value

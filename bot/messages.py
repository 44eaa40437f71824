"""The channel-agnostic message types that flow between the core and the channel adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


@dataclass
class Reply:
    """What the assistant says back.

    ``kind`` is one of: answer, choices, fallback, smalltalk, dossier, followup, info, error.
    """

    text: str
    kind: str = "info"
    buttons: list[Button] = field(default_factory=list)
    topic: str | None = None
    entry_id: str | None = None
    score: float | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] | None = None
    """The conversation state to keep for this chat after the reply (None: clear it)."""

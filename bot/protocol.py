"""The message protocol shared by the core and every channel: reply kinds, button payloads, the apology.

Buttons carry a payload (≤ 64 bytes, Telegram's limit) that comes back as ``Incoming.payload`` when
pressed. Channels without callback data (Zalo) send it back as text; :data:`PAYLOAD_NAMESPACES` lists
what may come back that way.

    help                   what the assistant can do
    rephrase               "none of the above": invites the citizen to ask again in other words
    pick:<entry id>        one of the offered choices
    detail:<entry id>      the full procedure ("xem chi tiết")
    fulltext               the whole Article of the clause last quoted from a legal text ("Xem toàn văn")
    fb:1 / fb:0            helpful / not helpful
    dossier:start|cancel   dossier status lookup (bot.lookup)
    followup:start|...     ask for an officer to call back (bot.followup)
    calc:<id>:<input>=<v>  the answer to a calculator's follow-up question (bot.calculators)
    media:<kind>           a sticker, image, voice... (set by the adapter; never a button)
"""

from __future__ import annotations

from enum import StrEnum


class ReplyKind(StrEnum):
    """What a reply is; stored with every request (``requests.kind``) and shown by the channels."""

    ANSWER = "answer"
    """An entry of the knowledge base, answered directly."""
    CHOICES = "choices"
    """A short list of close entries to pick from."""
    FALLBACK = "fallback"
    """No confident answer: said honestly, the question is logged for officers."""
    DOCUMENT = "document"
    """A quoted clause of a legal text, with its citation and date."""
    CALCULATION = "calculation"
    """An amount computed for the citizen's own case."""
    SMALLTALK = "smalltalk"
    DOSSIER = "dossier"
    FOLLOWUP = "followup"
    INFO = "info"
    ERROR = "error"


HELP = "help"
REPHRASE = "rephrase"
MEDIA = "media:"
PICK = "pick:"
DETAILS = "detail:"
FEEDBACK = "fb:"
FEEDBACK_YES = FEEDBACK + "1"
FEEDBACK_NO = FEEDBACK + "0"
DOSSIER = "dossier:"
DOSSIER_START = DOSSIER + "start"
DOSSIER_CANCEL = DOSSIER + "cancel"
FOLLOWUP = "followup:"
FOLLOWUP_START = FOLLOWUP + "start"
FOLLOWUP_CONFIRM = FOLLOWUP + "confirm"
FOLLOWUP_CANCEL = FOLLOWUP + "cancel"
CALC = "calc:"
FULL_TEXT = "fulltext"

PAYLOAD_NAMESPACES = (HELP, REPHRASE, FULL_TEXT, PICK, DETAILS, FEEDBACK, DOSSIER, FOLLOWUP, CALC)
"""The payloads a button may carry: ``help``, ``rephrase`` and ``fulltext`` exactly, the others as prefixes."""

APOLOGY = ("Xin lỗi, hệ thống đang gặp sự cố nên chưa trả lời được tin nhắn của bạn. Bạn vui lòng thử lại "
           "sau ít phút, hoặc gọi đường dây nóng của Sở.")
"""What a citizen is told when handling their message failed (on every channel)."""

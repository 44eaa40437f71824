"""How an officer's reply reads to the citizen."""

from __future__ import annotations

MAX_REPLY_CHARS = 1200


def citizen_message(dept_name: str, question: str, reply: str) -> str:
    q = question.strip()
    if len(q) > 200:
        q = q[:197] + "…"
    return (f"Cán bộ {dept_name} trả lời câu hỏi của bạn:\n«{q}»\n\n{reply.strip()}\n\n"
            "Bạn cần hỏi thêm cứ nhắn cho trợ lý nhé.")

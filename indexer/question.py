"""Find the ask inside a citizen's message.

Real messages are stories: a greeting, who the writer is, what happened, then one or two questions, then
thanks. Retrieval reads the whole message for context, but the words that decide the topic are in the
question sentences. :func:`parse` splits a message into sentences, drops greetings, self-introductions
and thanks, and marks the sentences that ask something:

    "Chào anh chị, em 29 tuổi, làm công nhân may 5 năm. Cho em hỏi em nộp hồ sơ thất nghiệp ở đâu ạ?"
      -> context  "em 29 tuổi, làm công nhân may 5 năm"
      -> ask      "em nộp hồ sơ thất nghiệp ở đâu"

Everything is judged on accent-folded text, so messages typed without diacritics are read the same way.
The result keeps the original wording (with or without diacritics) of each kept sentence.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from indexer.diacritics import fold

# Sentence ends: . ! ? ; … and new lines, but not the dots inside numbers (9.200.000) or codes (H41.22).
_SPLIT = re.compile(r"(?<=[?!;…\n])|(?<=\.)(?=\s)")
_WS = re.compile(r"\s+")

# A salutation at the start of a sentence, up to its first comma/colon: "Chào anh chị,", "Kính gửi Sở:".
_SALUTATION = re.compile(
    r"^(?:(?:da|xin|em|toi|minh|con|chau)\s+)*(?:chao|kinh gui|kinh thua|thua|gui|hello|hi|alo)\b"
    r"[^,:.!?]{0,40}[,:.!]\s*")
_THANKS = re.compile(
    r"^(?:(?:xin|em|toi|minh|con|chau)\s+)?(?:chan thanh\s+|tran trong\s+)?(?:cam on|thank|thanks|tks)\b")
_SIGN_OFF = re.compile(r"^(?:tran trong|kinh thu|than ai|mong (?:so|anh chi|ad|ban bien tap|quy co quan)"
                       r".{0,20}(?:giai dap|tra loi|tu van|huong dan|giup)\b)")
_ASK_LEAD = re.compile(
    r"^(?:(?:vay|the|nen|nay|gio|bay gio|vi vay|cho nen)\s+)?"
    r"(?:(?:cho|xin cho|xin phep cho)\s+)?(?:em|toi|minh|con|chau|tui|tao)?\s*"
    r"(?:xin|muon|can|dang can|xin duoc|cho|nho)?\s*(?:duoc\s+)?"
    r"(?:hoi|tu van|giai dap|huong dan|hoi giup|hoi thu)\s+(?:la\s+|ve\s+|giup\s+|them\s+)?")
_QUESTION_WORDS = re.compile(
    r"\b(?:bao nhieu|bao lau|bao gio|khi nao|luc nao|the nao|nhu the nao|ra sao|lam sao|lam the nao|"
    r"o dau|cho nao|noi nao|di dau|gi|nao|may|co duoc khong|duoc khong|duoc ko|dc ko|dc k|hay khong|"
    r"hay ko|phai khong|phai ko|khong a|ko a|chua a|chua|co phai|vi sao|tai sao|sao|nhung gi|"
    r"the nay|dung khong|co dung|hong|hem|khum|ko|k)\b\s*[a-z]{0,4}\s*$"
    r"|\b(?:bao nhieu|bao lau|khi nao|the nao|nhu the nao|ra sao|lam sao|o dau|co duoc|duoc khong|"
    r"co phai|hay khong|can (?:nhung )?(?:giay to|ho so|thu tuc) gi|the nao|muc huong|duoc huong|"
    r"co bi|co mat|co can|phai lam|lam gi|ho so gom|bao nhiu|bn)\b")


@dataclass(frozen=True)
class Sentence:
    text: str
    """The sentence as typed (greeting or ask-lead stripped)."""
    folded: str
    role: str
    """``ask`` (asks something), ``context`` (tells the story), ``greeting`` or ``thanks``."""


@dataclass(frozen=True)
class ParsedQuestion:
    text: str
    sentences: list[Sentence] = field(default_factory=list)

    @property
    def asks(self) -> list[Sentence]:
        return [s for s in self.sentences if s.role == "ask"]

    @property
    def body(self) -> str:
        """The message without greetings and thanks (the whole story, for context)."""
        kept = [s.text for s in self.sentences if s.role in ("ask", "context")]
        return " ".join(kept) if kept else self.text

    @property
    def core(self) -> str:
        """The question sentences (or, when none is recognised, the last sentence of the body)."""
        asks = [s.text for s in self.asks]
        if asks:
            return " ".join(asks)
        kept = [s.text for s in self.sentences if s.role == "context"]
        return kept[-1] if kept else self.text

    @property
    def views(self) -> list[str]:
        """What retrieval reads (and embeds): the body, then the core when it is another text."""
        core = self.core
        return [self.body, core] if core.strip() and core != self.body else [self.body]

    @property
    def is_story(self) -> bool:
        """More than the ask: a context sentence, or several sentences."""
        return any(s.role == "context" for s in self.sentences)


def split_sentences(text: str) -> list[str]:
    parts = [_WS.sub(" ", p).strip() for p in _SPLIT.split(text)]
    return [p for p in parts if p and re.search(r"\w", p)]


def _strip_punct(s: str) -> str:
    return s.strip(" ,.;:!?…-–\"'()").strip()


def _drop_prefix(original: str, folded: str, m: re.Match[str] | None) -> tuple[str, str]:
    """Cut the matched prefix of ``folded`` off ``original`` too (folding keeps the length)."""
    if m is None or m.end() == 0:
        return original, folded
    return original[m.end():].strip(), folded[m.end():].strip()


def classify(sentence: str) -> Sentence:
    original = _strip_punct(sentence) if not sentence.rstrip().endswith("?") else sentence.strip()
    folded = fold(original.lower())
    original, folded = _drop_prefix(original, folded, _SALUTATION.match(folded))
    if not re.search(r"\w", folded):
        return Sentence(original, folded, "greeting")
    if _THANKS.match(folded) or _SIGN_OFF.match(folded):
        return Sentence(original, folded, "thanks")
    asks = original.rstrip().endswith("?")
    lead = _ASK_LEAD.match(folded)
    if lead is not None and lead.end() > 0 and len(folded) - lead.end() >= 6:
        original, folded = _drop_prefix(original, folded, lead)
        asks = True
    bare = _strip_punct(folded)
    if not asks and _QUESTION_WORDS.search(bare):
        asks = True
    return Sentence(_strip_punct(original) or original, bare, "ask" if asks else "context")


def parse(text: str) -> ParsedQuestion:
    """Split ``text`` into classified sentences (see the module docstring)."""
    text = unicodedata.normalize("NFC", text)
    sentences = [classify(s) for s in split_sentences(text)]
    return ParsedQuestion(text=text, sentences=sentences)

"""Is this an amount question, for which calculator, with which numbers?

A question is an amount question when it has the keywords of a calculator (weighted, the strongest match
counts; ``exclude`` phrases veto a calculator) and an amount cue ("bao nhiêu", "lãnh nhiêu", "mấy
tháng"... from ``_recognizer.yaml``; "bao nhiêu ngày/lâu/%" are not amount cues). The inputs of the chosen
calculator are then read from the same words (``numbers.py``). While a follow-up question is pending, a
short reply is read as the answer to it (a bare "50", "8tr5", "vùng 2", a button payload ``calc:...``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.calculators import numbers as num
from bot.calculators.loader import Loaded
from bot.calculators.spec import Calculator, Condition, InputSpec, Phrase
from bot.protocol import CALC

__all__ = ["Detection", "Recogniser", "PAYLOAD_PREFIX"]

PAYLOAD_PREFIX = CALC
"""The button payload of a follow-up answer (one definition: ``bot.protocol.CALC``)."""
# Words before a money amount that say it is the insured salary (ranked above a plain "lương").
_INSURED = frozenset({"dong", "muc", "bh", "bhtn", "hiem"})
_SALARY = frozenset({"luong", "thu", "nhap", "binh", "quan"})
_YES = frozenset({"co", "dung", "u", "vang", "da", "roi", "yes", "ok"})
_NO = frozenset({"khong", "chua", "no", "ko", "k"})


@dataclass(frozen=True)
class Detection:
    """An amount question (or the answer to a pending follow-up) and the inputs read from it."""

    calculator: str
    topic: str
    inputs: dict[str, Any] = field(default_factory=dict)
    score: float = 0.0
    notes: tuple[str, ...] = ()
    """How a number was read ("8 hiểu là 8 triệu đồng"), shown with the result."""
    resumed: bool = False
    """True when the text answers the pending follow-up question of ``state``."""
    unparsed: bool = False
    """True when it was meant as an answer but could not be read: the follow-up is asked again."""

    @property
    def has_numbers(self) -> bool:
        return bool(self.inputs)


def _has(tokens: list[str], ph: Phrase) -> bool:
    return num.contains(tokens, ph) >= 0


def _sentences(tokens: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for tok in tokens:
        if tok in (".", "?", "!", ";"):
            out.append([])
        else:
            out[-1].append(tok)
    return [s for s in out if s]


class Recogniser:
    def __init__(self, loaded: Loaded, abbreviations: Mapping[str, str] | None = None) -> None:
        self.loaded = loaded
        self.abbreviations = dict(abbreviations or {})

    # --- public -------------------------------------------------------------------------------------
    def detect(self, text: str, state: dict[str, Any] | None = None, today: dt.date | None = None) -> Detection | None:
        today = today or dt.date.today()
        text = text or ""
        if text.startswith(PAYLOAD_PREFIX):
            return self._payload(text, state)
        tokens = num.normalize(text, self.abbreviations)
        pending = self._pending(state)
        fresh = self._fresh(tokens, today)
        if pending is not None:
            calc, ask = pending
            if fresh is not None and fresh.calculator != calc.id:
                return fresh  # a new amount question about something else
            inputs, notes = self._answer(calc, ask, tokens, today)
            more, more_notes = self.extract(calc, tokens, today)
            for k, value in more.items():
                inputs.setdefault(k, value)
            if inputs:
                return Detection(calc.id, calc.topic, inputs, 1.0, tuple(notes + more_notes), resumed=True)
            if fresh is not None:
                return fresh
            if len(tokens) <= 6:
                return Detection(calc.id, calc.topic, {}, 0.0, resumed=True, unparsed=True)
            return None
        return fresh

    def score(self, calc: Calculator, tokens: list[str], today: dt.date) -> float:
        """Keyword weight (the strongest match) plus boosts. A story that mentions other business
        (``exclude`` phrases: a death, housing, school fees...) scores only through one sentence that asks
        an amount, names the calculator's subject, gives one of its numbers or choices (not just an age)
        and has none of those phrases: "... xin giám định lại? Còn thương binh 71% được bao nhiêu?"."""
        excluded = calc.config.get("exclude", ())
        present = set(tokens)
        if any(ph and ph[0] in present and _has(tokens, ph) for ph in excluded):
            own = {s.name for s in calc.inputs if s.type != "age" and not s.derived_from_age}
            best = 0.0
            for s in _sentences(tokens):
                if self.has_cue(s) and not any(_has(s, ph) for ph in excluded) \
                        and own & set(self.extract(calc, s, today)[0]):
                    best = max(best, self._keyword_score(calc, s, today))
            return best
        return self._keyword_score(calc, tokens, today)

    def _keyword_score(self, calc: Calculator, tokens: list[str], today: dt.date) -> float:
        best = 0.0
        present = set(tokens)  # most keywords are absent: their first token says so without a scan
        for ph, weight in calc.keywords:
            if weight > best and ph and ph[0] in present and _has(tokens, ph):
                best = weight
        if best and calc.boosts:
            for b in calc.boosts:
                value = self._read(calc.input(b.input), tokens, today)[0] if calc.input(b.input) else None
                if value is not None and Condition(((b.input, b.when),)).matches({b.input: value}):
                    best += b.weight
        return best

    def has_cue(self, tokens: list[str]) -> bool:
        for cue in self.loaded.amount_cues:
            start = 0
            while True:
                i = num.contains(tokens, cue, start)
                if i < 0:
                    break
                after = tokens[i + len(cue):]
                if not any(tuple(after[:len(x)]) == x for x in self.loaded.not_amount_after):
                    return True
                start = i + 1
        return False

    def extract(self, calc: Calculator, tokens: list[str], today: dt.date) -> tuple[dict[str, Any], list[str]]:
        """The inputs of ``calc`` found in the tokens, and notes on how they were read."""
        inputs: dict[str, Any] = {}
        notes: list[str] = []
        for spec in calc.inputs:
            value, note = self._read(spec, tokens, today)
            if value is not None:
                inputs[spec.name] = value
                if note:
                    notes.append(note)
        if any(s.derived_from_age for s in calc.inputs) and "age" not in inputs:
            ages = num.ages(tokens, today)
            if ages:
                inputs["age"] = ages[0].value
        for spec in calc.inputs:  # choices implied by the age ("8 tuổi" -> under 16)
            if spec.derived_from_age and spec.name not in inputs and isinstance(inputs.get("age"), int):
                for c in spec.choices:
                    if c.ages and c.ages[0] <= inputs["age"] <= c.ages[1]:
                        inputs[spec.name] = c.value
        return inputs, notes

    # --- a new question -----------------------------------------------------------------------------
    def _fresh(self, tokens: list[str], today: dt.date) -> Detection | None:
        if not self.has_cue(tokens):  # no amount asked: no calculator (and no need to score them)
            return None
        scored = [(self.score(c, tokens, today), c) for c in self.loaded.calculators.values()]
        scored = [(s, c) for s, c in scored if s >= self.loaded.min_score]
        if not scored:
            return None
        scored.sort(key=lambda sc: -sc[0])
        best_score, calc = scored[0]
        inputs, notes = self.extract(calc, tokens, today)
        return Detection(calc.id, calc.topic, inputs, best_score, tuple(notes))

    # --- reading one input ----------------------------------------------------------------------------
    def _read(self, spec: InputSpec | None, tokens: list[str], today: dt.date) -> tuple[Any, str]:
        if spec is None:
            return None, ""
        t = spec.type
        if t == "months":
            found = num.months(tokens)
            return (found[0].value, "") if found else (None, "")
        if t == "money":
            return self._salary(tokens)
        if t == "percent":
            found = num.percents(tokens, spec.after)
            return (found[0].value, "") if found else (None, "")
        if t == "age":
            ages = num.ages(tokens, today)
            return (ages[0].value, ages[0].note) if ages else (None, "")
        if t == "region":
            r = num.region(tokens)
            return (("I", "II", "III", "IV")[r.value - 1], "") if r else (None, "")
        if t == "count":
            found = num.counts(tokens, spec.count_of)
            if found:
                return found[0].value, ""
            for value, phrases in spec.detect:
                if any(_has(tokens, ph) for ph in phrases):
                    return int(value), ""
            return None, ""
        if t == "flag":
            for _value, phrases in spec.detect:
                if any(_has(tokens, ph) for ph in phrases):
                    return True, ""
            return None, ""
        if t == "choice":
            best, best_len = None, 0
            for c in spec.choices:
                for alternative in c.detect:
                    if alternative and all(_has(tokens, ph) for ph in alternative):
                        size = sum(len(ph) for ph in alternative)
                        if size > best_len:
                            best, best_len = c.value, size
            return best, ""
        return None, ""

    def _salary(self, tokens: list[str]) -> tuple[Any, str]:
        """The insured salary: an amount after "đóng/mức" ranks above one after "lương", then the first.

        A bare number up to 300 right after "lương" is read as millions ("lương 8" -> 8.000.000 đ)."""
        ranked = []
        for f in num.money(tokens):
            rank = 0
            for k in range(f.start - 1, max(-1, f.start - 9), -1):
                w = tokens[k]
                if w in {".", "?", "!", ";"} or num._num(w) is not None:
                    break
                if w in _INSURED:
                    rank = 2
                    break
                if w in _SALARY:
                    rank = max(rank, 1)
            ranked.append((rank, f))
        if ranked:
            ranked.sort(key=lambda rf: -rf[0])
            return ranked[0][1].value, ""
        for i, w in enumerate(tokens[:-1]):
            if w == "luong":
                j = i + 1
                while j < len(tokens) and tokens[j] in {"la", "khoang", "tam", "co", "thang", "duoc", "cua", "em", "toi", "minh"}:
                    j += 1
                if j < len(tokens) and num._is_int(tokens[j]) and 0 < int(tokens[j]) <= 300:
                    nxt = tokens[j + 1] if j + 1 < len(tokens) else ""
                    if nxt not in {"thang", "nam", "tuoi", "%", "/", "ngay", "gio"}:
                        return int(tokens[j]) * 1_000_000, f"Hiểu \"lương {tokens[j]}\" là {tokens[j]} triệu đồng."
        return None, ""

    # --- a pending follow-up ------------------------------------------------------------------------
    def _pending(self, state: dict[str, Any] | None) -> tuple[Calculator, InputSpec] | None:
        if not isinstance(state, dict):
            return None
        calc = self.loaded.calculators.get(str(state.get("calc")))
        if calc is None:
            return None
        spec = calc.input(str(state.get("ask")))
        return (calc, spec) if spec is not None else None

    def _answer(self, calc: Calculator, spec: InputSpec, tokens: list[str], today: dt.date) -> tuple[dict[str, Any], list[str]]:
        """The asked input from a short answer: typed forms first, then a bare number or a choice word."""
        value, note = self._read(spec, tokens, today)
        if value is None:
            bare = num.bare_number(tokens)
            t = spec.type
            if t in ("months", "percent", "age", "count") and bare is not None:
                value = bare
            elif t == "money" and bare is not None:
                if 0 < bare <= 300:
                    value, note = bare * 1_000_000, f"Hiểu \"{bare}\" là {bare} triệu đồng."
                else:
                    value = bare
            elif t == "region":
                value = num.region_name(" ".join(tokens))
            elif t == "flag":
                if tokens and tokens[0] in _YES:
                    value = True
                elif tokens and tokens[0] in _NO:
                    value = False
            elif t == "choice":
                value = self._choice_answer(spec, tokens, bare)
        if value is None and spec.derived_from_age:
            bare = num.bare_number(tokens)
            age = bare if bare is not None else next((a.value for a in num.ages(tokens, today)), None)
            if age is not None:
                return {"age": age}, []
        return ({spec.name: value}, [note] if note else []) if value is not None else ({}, [])

    @staticmethod
    def _choice_answer(spec: InputSpec, tokens: list[str], bare: int | None) -> str | None:
        buttons = [c for c in spec.choices if c.button]
        if bare is not None and 1 <= bare <= len(buttons) and len(tokens) <= 2:
            return buttons[bare - 1].value
        words = set(tokens)
        best, best_overlap = None, 0
        for c in spec.choices:
            label = set(num.normalize(c.label))
            overlap = len(words & label)
            if overlap > best_overlap and overlap >= max(1, len(label) // 2):
                best, best_overlap = c.value, overlap
        return best

    def _payload(self, text: str, state: dict[str, Any] | None) -> Detection | None:
        """``calc:<id>:<input>=<value>``: a button pressed under a follow-up question."""
        try:
            cid, assignment = text[len(PAYLOAD_PREFIX):].split(":", 1)
            name, raw = assignment.split("=", 1)
        except ValueError:
            return None
        calc = self.loaded.calculators.get(cid)
        spec = calc.input(name) if calc else None
        if calc is None or spec is None:
            return None
        value: Any = raw
        if spec.type in ("months", "money", "age", "count") or (spec.type == "percent" and "-" not in raw):
            try:
                value = int(raw)
            except ValueError:
                return None
        elif spec.type == "flag":
            value = raw == "true"
        resumed = isinstance(state, dict) and state.get("calc") == cid
        return Detection(calc.id, calc.topic, {name: value}, 1.0, resumed=resumed)

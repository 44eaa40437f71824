"""One dialogue step of a calculator: a result, ONE follow-up question, or a clear message for bad input.

``step`` merges the inputs kept in the conversation state with those just read, checks them, asks for the
first input that still matters (with buttons when the choices are few), or computes and renders the
result phone-sized: headline, the steps with their arithmetic, notes, the legal basis, the date the
figures hold from, the figures awaiting confirmation, and that the competent agency decides the exact
amount. The new state is a small JSON-able dict (``None`` when the exchange is over).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from bot.calculators.engine import Computation, Engine, describe_input
from bot.calculators.loader import payload
from bot.calculators.numbers import format_date, format_money, format_number
from bot.calculators.recognise import Detection
from bot.calculators.spec import Calculator, InputSpec
from bot.messages import Button

__all__ = ["CalcOutcome", "step", "STATE_VERSION", "DISCLAIMER"]

STATE_VERSION = 1
MAX_TRIES = 2
DISCLAIMER = "Đây là số ước tính; số tiền chính xác do cơ quan có thẩm quyền quyết định."
DECIDED = "Trường hợp cụ thể do cơ quan có thẩm quyền xem xét, quyết định."
REVIEW_LEAD = "Lưu ý, đang chờ cán bộ xác nhận với văn bản gốc:"


@dataclass
class CalcOutcome:
    """What a calculator says back. ``kind``: result | question | invalid | not_eligible | no_data."""

    kind: str
    calculator: str
    topic: str
    text: str
    buttons: list[Button] = field(default_factory=list)
    state: dict[str, Any] | None = None
    """The conversation state to keep (pass it back with the next message); None: the exchange is over."""
    values: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    ask: str | None = None
    """The input asked for (kind question/invalid)."""
    legal_basis: list[str] = field(default_factory=list)
    valid_from: dt.date | None = None
    needs_review: bool = False
    review: list[str] = field(default_factory=list)

    @property
    def amount(self) -> int | None:
        """The main amount of a result (monthly amount, one-off payment...), if any."""
        for key in ("monthly", "amount", "one_off"):
            if isinstance(self.values.get(key), int) and not isinstance(self.values.get(key), bool):
                return int(self.values[key])
        return None


def _invalid_reason(spec: InputSpec, value: Any) -> str | None:
    """Why a value is impossible, or None when it is acceptable."""
    if spec.type in ("months", "money", "percent", "age", "count"):
        if isinstance(value, str) and spec.type == "percent" and "-" in value:
            lo, hi = (int(x) for x in value.split("-", 1))
            value = lo if spec.min is not None and lo < spec.min else hi
        if not isinstance(value, int | float) or isinstance(value, bool):
            return "không đọc được con số"
        if value < 0:
            return "không thể là số âm"
        if spec.min is not None and value < spec.min:
            return "quá nhỏ" if spec.type == "money" else f"phải từ {format_number(spec.min)} trở lên"
        if spec.max is not None and value > spec.max:
            if spec.type == "percent":
                return f"tỷ lệ chỉ từ {spec.min:g} % đến {spec.max:g} %"
            if spec.type == "age":
                return f"tuổi không thể lớn hơn {spec.max:g}"
            return "quá lớn, không hợp lý"
    if spec.type == "choice" and spec.choice(str(value)) is None:
        return "không thuộc các lựa chọn"
    if spec.type == "region" and str(value) not in ("I", "II", "III", "IV"):
        return "vùng chỉ có I, II, III, IV"
    return None


def _shown(spec: InputSpec, value: Any) -> str:
    if spec.type == "money" and isinstance(value, int):
        return format_money(value)
    if spec.type == "percent" and isinstance(value, int):
        return f"{value} %"
    if spec.type == "months" and isinstance(value, int):
        return f"{value} tháng"
    if spec.type == "age" and isinstance(value, int):
        return f"{value} tuổi"
    return str(value)


def _buttons(calc: Calculator, spec: InputSpec) -> list[Button]:
    if spec.type == "percent" and spec.buttons:
        return [Button(b.replace("-", "–") + " %", payload(calc.id, spec.name, b)) for b in spec.buttons]
    if spec.choices and spec.type in ("choice", "region", "count"):
        return [Button(c.label, payload(calc.id, spec.name, c.value)) for c in spec.choices if c.button]
    if spec.type == "flag":
        return [Button("Có", payload(calc.id, spec.name, "true")), Button("Không", payload(calc.id, spec.name, "false"))]
    return []


def _state(calc: Calculator, inputs: dict[str, Any], ask: str, tries: int = 0) -> dict[str, Any]:
    return {"v": STATE_VERSION, "calc": calc.id, "inputs": dict(inputs), "ask": ask, "tries": tries}


def _render(calc: Calculator, comp: Computation, inputs: dict[str, Any], notes: tuple[str, ...]) -> str:
    lines = [comp.headline]
    if calc.kind == "rules":  # the steps of the other kinds show the numbers themselves
        shown = [describe_input(s, inputs[s.name]) for s in calc.inputs
                 if inputs.get(s.name) is not None and s.type != "flag"]
        given = [x[:1].lower() + x[1:] for x in shown]
        if given:
            lines.append("Theo thông tin: " + "; ".join(given) + ".")
    lines.extend(f"• {s}" for s in comp.steps)
    lines.extend(f"• {n}" for n in list(notes) + comp.notes)
    basis = "Căn cứ: " + "; ".join(comp.legal_basis) if comp.legal_basis else ""
    if comp.valid_from:
        basis += ("; " if basis else "") + f"áp dụng từ {format_date(comp.valid_from)}"
    if basis:
        lines.append(basis[0].upper() + basis[1:] + ".")
    if comp.review:
        lines.append(REVIEW_LEAD + " " + "; ".join(comp.review) + ".")
    if comp.status == "not_eligible" and not any(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                 for v in comp.values.values()):
        lines.append(DECIDED)
    elif comp.status != "no_data" and calc.kind != "figure":
        lines.append(DISCLAIMER)
    return "\n".join(lines)


def step(engine: Engine, calc: Calculator, detection: Detection, state: dict[str, Any] | None,
         on: dt.date) -> CalcOutcome:
    """One turn: merge ``state`` (if it is this calculator's) with ``detection``, then ask or compute."""
    kept: dict[str, Any] = {}
    tries = 0
    if isinstance(state, dict) and state.get("calc") == calc.id and isinstance(state.get("inputs"), dict):
        kept = dict(state["inputs"])
        tries = int(state.get("tries") or 0)
    inputs = {**kept, **{k: v for k, v in detection.inputs.items() if v is not None}}

    def out(kind: str, text: str, spec: InputSpec | None = None, state: dict[str, Any] | None = None) -> CalcOutcome:
        return CalcOutcome(kind, calc.id, calc.topic, text, buttons=_buttons(calc, spec) if spec else [],
                           state=state, inputs=dict(inputs), ask=spec.name if spec else None)

    if detection.unparsed:
        ask = str(state.get("ask")) if isinstance(state, dict) else ""
        spec = calc.input(ask)
        if spec is None or tries + 1 >= MAX_TRIES:
            return out("invalid", "Em chưa đọc được câu trả lời nên dừng phần tính tiền ở đây. "
                       "Anh/chị có thể hỏi lại kèm con số, ví dụ: " + _example(calc) + ".")
        return out("question", "Em chưa đọc được câu trả lời. " + spec.ask, spec,
                   _state(calc, inputs, spec.name, tries + 1))

    # Impossible values: say which and why, ask again for that input, keep the others.
    for spec in calc.inputs:
        value = inputs.get(spec.name)
        if value is None:
            continue
        reason = _invalid_reason(spec, value)
        if reason:
            inputs.pop(spec.name)
            if spec.invalid:
                msg = spec.invalid.replace("{value}", _shown(spec, value))
            else:
                msg = f"{spec.label}: {_shown(spec, value)} là không hợp lệ ({reason})."
            return out("invalid", f"{msg}\n{spec.ask or 'Anh/chị kiểm tra lại giúp em.'}", spec,
                       _state(calc, inputs, spec.name, tries))
    age = inputs.get("age")
    if age is not None and any(s.derived_from_age for s in calc.inputs) and (
            not isinstance(age, int) or age < 0 or age > 125):
        inputs.pop("age")
        spec = next(s for s in calc.inputs if s.derived_from_age)
        return out("invalid", f"Tuổi: {age} là không hợp lệ.\n{spec.ask}", spec, _state(calc, inputs, spec.name, tries))

    missing = engine.missing(calc, inputs, on)
    if missing:
        spec = calc.input(missing[0])
        assert spec is not None
        lead = calc.summary + "\n" if not inputs and calc.summary else ""
        return out("question", lead + spec.ask, spec, _state(calc, inputs, spec.name))

    comp = engine.compute(calc, inputs, on)
    kind = comp.status if comp.status in ("not_eligible", "no_data") else "result"
    return CalcOutcome(kind, calc.id, calc.topic, _render(calc, comp, inputs, detection.notes), values=comp.values,
                       inputs=dict(inputs), legal_basis=comp.legal_basis, valid_from=comp.valid_from,
                       needs_review=bool(comp.review), review=comp.review)


def _example(calc: Calculator) -> str:
    examples = {
        "months": "đóng 50 tháng", "money": "lương 8 triệu", "percent": "tỷ lệ 61%", "age": "82 tuổi",
        "region": "vùng II", "count": "2",
    }
    parts = [examples[s.type] for s in calc.inputs if not s.optional and s.type in examples]
    return ", ".join(parts) or calc.title.lower()

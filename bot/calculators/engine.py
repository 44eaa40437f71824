"""Compute a calculator's result from its inputs on a date: pure functions of the loaded data.

``missing`` says which inputs are still needed (only those that change the result: the region is asked
only when the cap can apply, the situation of an elderly person only when the age does not settle it);
``compute`` returns a ``Computation``: the status, a headline, the steps with their arithmetic, the notes,
the figures (for tests and logs), the legal basis, the date the figures hold from and the figures that
await confirmation (``needs_review``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from bot.calculators.numbers import format_coefficient, format_date, format_money, format_number
from bot.calculators.spec import REGIONS, Calculator, Condition, Figure, FigurePeriod, InputSpec, Period, Rule

__all__ = ["Computation", "Engine", "NoData", "derive_inputs"]

_PLACEHOLDER = re.compile(r"\{([a-zA-Z0-9_.]+)(?:\*(\d+(?:[.,]\d+)?))?\}")


class NoData(Exception):
    """No figure or period covers the date asked."""


@dataclass
class Computation:
    status: str
    """result | not_eligible | no_data"""
    headline: str
    steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    legal_basis: list[str] = field(default_factory=list)
    valid_from: dt.date | None = None
    review: list[str] = field(default_factory=list)


class _Trace:
    """What a computation used: legal basis, latest valid_from, figures awaiting confirmation."""

    def __init__(self, figures: dict[str, Figure], on: dt.date) -> None:
        self.figures = figures
        self.on = on
        self.basis: list[str] = []
        self.valid_from: dt.date | None = None
        self.review: list[str] = []

    def _add_basis(self, items: Any) -> None:
        for b in items:
            if b not in self.basis:
                self.basis.append(b)

    def _date(self, d: dt.date) -> None:
        if self.valid_from is None or d > self.valid_from:
            self.valid_from = d

    def period(self, calc: Calculator, per: Period) -> None:
        self._add_basis(per.legal_basis)
        self._date(per.valid_from)
        if per.needs_review:
            item = f"quy định {calc.title.lower()} áp dụng từ {format_date(per.valid_from)}"
            if item not in self.review:
                self.review.append(item)

    def figure(self, key: str) -> FigurePeriod:
        fig = self.figures[key]
        fp = fig.at(self.on)
        if fp is None:
            raise NoData(f"{fig.title}: chưa có số liệu cho ngày {format_date(self.on)}")
        self._add_basis([fp.legal_basis])
        self._date(fp.valid_from)
        if fp.needs_review:
            item = f"{fig.title.lower()} {format_money(fp.amount)} (từ {format_date(fp.valid_from)})"
            if item not in self.review:
                self.review.append(item)
        return fp


def derive_inputs(calc: Calculator, inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs with the values implied by others: a choice with age ranges from ``age``."""
    out = dict(inputs)
    age = out.get("age")
    for spec in calc.inputs:
        if spec.derived_from_age and out.get(spec.name) is None and isinstance(age, int):
            for c in spec.choices:
                if c.ages and c.ages[0] <= age <= c.ages[1]:
                    out[spec.name] = c.value
    return out


def _with_defaults(calc: Calculator, inputs: dict[str, Any]) -> dict[str, Any]:
    out = derive_inputs(calc, inputs)
    for spec in calc.inputs:
        if out.get(spec.name) is None and spec.default is not None:
            out[spec.name] = spec.default
    return out


def _unit(calc: Calculator) -> str:
    return str(calc.config.get("unit") or "đ/tháng")


def _plain(value: float) -> str:
    """5.0 -> "5", 60.0 -> "60", 1.5 -> "1,5" (multipliers and rates in the steps)."""
    return str(int(value)) if value == int(value) else format_coefficient(value)


class Engine:
    def __init__(self, figures: dict[str, Figure]) -> None:
        self.figures = figures

    # --- which inputs are still needed ---------------------------------------------------------------
    def missing(self, calc: Calculator, inputs: dict[str, Any], on: dt.date) -> list[str]:
        values = _with_defaults(calc, inputs)
        if calc.kind == "unemployment":
            return self._missing_unemployment(calc, values, on)
        if calc.kind == "rate_table":
            rate = calc.config["rate_input"]
            return [] if values.get(rate) is not None else [rate]
        if calc.kind == "rules":
            per = calc.period_at(on)
            if per is None:
                return []
            rules = per.data.get("rules") or calc.rules
            need = self._rules_need(calc, rules, values)
            return [need] if need else []
        return []

    def _missing_unemployment(self, calc: Calculator, v: dict[str, Any], on: dt.date) -> list[str]:
        if v.get("months") is None:
            return ["months"]
        per = calc.period_at(on)
        if per is None or v["months"] < per.data["min_months"]:
            return []
        if v.get("salary") is None:
            return ["salary"]
        if v.get("region") is None:
            monthly = round(v["salary"] * per.data["rate_percent"] / 100)
            caps = [self._cap(per, r, on) for r in REGIONS]
            if all(c is not None for c in caps) and monthly > min(c for c in caps if c is not None):
                return ["region"]
        return []

    def _cap(self, per: Period, region: str, on: dt.date) -> float | None:
        fp = self.figures[f"{per.data['cap_figure']}.{region}"].at(on)
        return None if fp is None else per.data["cap_multiplier"] * fp.amount

    def _rules_need(self, calc: Calculator, rules: tuple[Rule, ...], values: dict[str, Any]) -> str | None:
        """The first required input that a rule needs before the result is settled, or None."""
        optional = {s.name for s in calc.inputs if s.optional}
        for rule in rules:
            unknown = [name for name, _ in rule.when.tests if values.get(name) is None and name not in optional]
            known = Condition(tuple((n, w) for n, w in rule.when.tests if n not in unknown))
            if not known.matches(values):
                continue
            if unknown:
                return unknown[0]
            if rule.add is not None and rule.add.per and values.get(rule.add.per) is None:
                return rule.add.per
            if rule.not_eligible or rule.stop:
                return None
        return None

    # --- computing -------------------------------------------------------------------------------------
    def compute(self, calc: Calculator, inputs: dict[str, Any], on: dt.date) -> Computation:
        values = _with_defaults(calc, inputs)
        trace = _Trace(self.figures, on)
        try:
            if calc.kind == "unemployment":
                comp = self._unemployment(calc, values, on, trace)
            elif calc.kind == "rate_table":
                comp = self._rate_table(calc, values, on, trace)
            elif calc.kind == "rules":
                comp = self._rules(calc, values, on, trace)
            else:
                comp = self._figure(calc, values, on, trace)
        except NoData as exc:
            return Computation("no_data", f"Chưa có số liệu để tính {calc.title.lower()} cho ngày "
                                          f"{format_date(on)}.", notes=[str(exc)])
        comp.legal_basis = trace.basis
        comp.valid_from = trace.valid_from
        comp.review = trace.review
        return comp

    def _period(self, calc: Calculator, on: dt.date, trace: _Trace) -> Period:
        per = calc.period_at(on)
        if per is None:
            raise NoData(f"{calc.title}: chưa có quy định áp dụng cho ngày {format_date(on)}")
        trace.period(calc, per)
        return per

    def render(self, text: str, values: dict[str, Any], per: Period | None, trace: _Trace,
               quiet: bool = False) -> str:
        """Fill {input}, {amount of the period}, {figure key} and {name*5} placeholders.

        ``quiet`` (notes): a figure mentioned in passing does not join the legal basis; one that awaits
        confirmation is marked "(chờ xác nhận)" next to it."""

        def one(m: re.Match[str]) -> str:
            name, mult = m.group(1), m.group(2)
            factor = float(mult.replace(",", ".")) if mult else 1.0
            if per is not None and name in per.amounts:
                return format_money(per.amounts[name] * factor)
            if name in self.figures:
                if not quiet:
                    return format_money(trace.figure(name).amount * factor)
                fp = self.figures[name].at(trace.on)
                if fp is None:
                    raise NoData(f"{self.figures[name].title}: chưa có số liệu cho ngày {format_date(trace.on)}")
                return format_money(fp.amount * factor) + (" (chờ xác nhận)" if fp.needs_review else "")
            if name in values and values[name] is not None:
                value = values[name]
                return format_number(value) if isinstance(value, int) and abs(value) >= 10000 else str(value)
            return m.group(0)

        return _PLACEHOLDER.sub(one, text)

    def _notes(self, calc: Calculator, values: dict[str, Any], per: Period | None, trace: _Trace) -> list[str]:
        return [self.render(n.text, values, per, trace, quiet=True) for n in calc.notes if n.when.matches(values)]

    # --- unemployment benefit ---------------------------------------------------------------------------
    def _unemployment(self, calc: Calculator, v: dict[str, Any], on: dt.date, trace: _Trace) -> Computation:
        per = self._period(calc, on, trace)
        d = per.data
        months = int(v["months"])
        min_months, first_months = int(d["min_months"]), int(d["first_months"])
        first_benefit, step, max_benefit = int(d["first_benefit"]), int(d["step_months"]), int(d["max_benefit"])
        if months < min_months:
            return Computation(
                "not_eligible",
                f"Đóng bảo hiểm thất nghiệp {months} tháng chưa đủ {min_months} tháng nên chưa được hưởng "
                "trợ cấp thất nghiệp.",
                notes=[f"Cần đóng đủ {min_months} tháng trong thời gian luật định trước khi nghỉ việc. Thời gian "
                       "đã đóng không mất mà được cộng dồn cho lần sau."],
                values={"months_benefit": 0},
            )
        extra = max(0, (months - first_months) // step)
        benefit = min(max_benefit, first_benefit + extra)
        used = months if months <= first_months else first_months + (benefit - first_benefit) * step
        kept = months - used
        if months <= first_months:
            duration = (f"Thời gian hưởng: đóng {months} tháng (từ {min_months} đến {first_months} tháng) → "
                        f"{first_benefit} tháng.")
        else:
            shown = benefit - first_benefit
            duration = (f"Thời gian hưởng: đóng {months} tháng → {first_benefit} + {shown} = {benefit} tháng "
                        f"({first_months} tháng đầu: {first_benefit} tháng; mỗi {step} tháng đóng thêm: 1 tháng")
            duration += f"; tối đa {max_benefit} tháng)." if benefit == max_benefit else ")."
        steps = [duration]
        if kept > 0:
            steps.append(f"Bảo lưu: {kept} tháng đóng chưa dùng được cộng để tính cho lần hưởng sau.")
        salary = int(v["salary"])
        rate = float(d["rate_percent"])
        monthly60 = round(salary * rate / 100)
        mult = float(d["cap_multiplier"])
        region = v.get("region")
        if region:
            fp = trace.figure(f"{d['cap_figure']}.{region}")
            cap = round(mult * fp.amount)
            cap_text = f"{format_money(cap)} ({_plain(mult)} × {format_money(fp.amount)}, vùng {region})"
        else:
            # Not asked because even the lowest cap is not reached.
            caps = {r: trace.figure(f"{d['cap_figure']}.{r}") for r in REGIONS}
            low_region = min(caps, key=lambda r: caps[r].amount)
            cap = round(mult * caps[low_region].amount)
            cap_text = (f"{format_money(cap)} ({_plain(mult)} × "
                        f"{format_money(caps[low_region].amount)}, vùng {low_region}, mức trần thấp nhất)")
        capped = monthly60 > cap
        monthly = cap if capped else monthly60
        rate_text = _plain(rate)
        if capped:
            steps.append(f"Mức hưởng: {format_number(salary)} × {rate_text} % = {format_money(monthly60)}, vượt mức "
                         f"trần {cap_text}, nên được {format_money(monthly)}/tháng.")
        else:
            steps.append(f"Mức hưởng: {format_number(salary)} × {rate_text} % = {format_money(monthly60)}/tháng, "
                         f"dưới mức trần {cap_text}.")
        total = monthly * benefit
        steps.append(f"Tổng cộng: {benefit} × {format_money(monthly)} = {format_money(total)}.")
        steps.append(str(d["start"]))
        notes = [self.render(n, v, per, trace, quiet=True) for n in d.get("notes", ())]
        return Computation(
            "result",
            f"Trợ cấp thất nghiệp ước tính: {format_money(monthly)}/tháng, trong {benefit} tháng.",
            steps=steps, notes=notes,
            values={"months_benefit": benefit, "months_kept": kept, "monthly": monthly, "total": total,
                    "capped": capped, "cap": cap},
        )

    # --- tables by rate -------------------------------------------------------------------------------
    def _rate_table(self, calc: Calculator, v: dict[str, Any], on: dt.date, trace: _Trace) -> Computation:
        cfg = calc.config
        per = calc.period_at(on)
        if per is None:
            raise NoData(f"{calc.title}: chưa có quy định áp dụng cho ngày {format_date(on)}")
        raw = v[cfg["rate_input"]]
        if isinstance(raw, str) and "-" in raw:
            lo, hi = (int(x) for x in raw.split("-", 1))
            rate, rate_text = lo, f"{lo}–{hi} %"
        else:
            rate = int(raw)
            rate_text = f"{rate} %"
        values = dict(v)
        values[cfg["rate_input"]] = rate
        threshold = cfg["threshold"]
        if rate < threshold:
            comp = Computation("not_eligible",
                               f"Tỷ lệ {rate_text}: không có trợ cấp hằng tháng (từ {threshold:g} % mới có).",
                               steps=[self.render(cfg["below_text"], values, per, trace, quiet=True)])
            one_off = cfg.get("one_off")
            band = next((b for b in one_off["bands"] if b[0] <= rate <= b[1]), None) if one_off else None
            if not (one_off and band):
                trace.period(calc, per)
            if one_off and band:
                fp = trace.figure(one_off["figure"])
                amount = round(band[2] * fp.amount)
                trace._add_basis([one_off["legal_basis"]])
                comp.headline += f" Được trợ cấp một lần {format_money(amount)}."
                comp.steps.append(f"{one_off['label']}: tỷ lệ {band[0]}–{band[1]} % → {format_coefficient(band[2])} × "
                                  f"mức chuẩn {format_money(fp.amount)} = {format_money(amount)} (một lần).")
                comp.values["one_off"] = amount
            return comp
        trace.period(calc, per)
        table = str(v.get(cfg["table_input"]) or "A") if cfg.get("table_input") else next(iter(cfg["tables"]), "A")
        rows = per.data["tables"][table]
        row = next(r for r in rows if r[0] <= rate <= r[1])
        amount = row[2]
        source = cfg["tables"].get(table, "")
        where = ", ".join(x for x in (source, per.document) if x)
        group = f" (nhóm {row[0]}–{row[1]} %)" if row[0] != row[1] and "–" not in rate_text else ""
        label = ""
        spec = calc.input(cfg["table_input"]) if cfg.get("table_input") else None
        if spec is not None and len(spec.choices) > 1:
            chosen = spec.choice(table)
            label = f"{chosen.label}, " if chosen else ""
        steps = [f"{label}tỷ lệ tổn thương cơ thể {rate_text}{group} → {format_money(amount)}/tháng"
                 + (f" ({where})." if where else ".")]
        steps[0] = steps[0][0].upper() + steps[0][1:]
        return Computation("result", f"{calc.title}: {format_money(amount)}/tháng.", steps=steps,
                           notes=self._notes(calc, values, per, trace), values={"amount": amount, "table": table})

    # --- rules (coefficients, fixed amounts) -----------------------------------------------------------
    def _rules(self, calc: Calculator, v: dict[str, Any], on: dt.date, trace: _Trace) -> Computation:
        per = self._period(calc, on, trace)
        rules = per.data.get("rules") or calc.rules
        parts: list[tuple[str, int]] = []
        for rule in rules:
            if not rule.when.matches(v):
                continue
            if rule.not_eligible:
                return Computation("not_eligible", self.render(rule.not_eligible, v, per, trace),
                                   notes=self._notes(calc, v, per, trace))
            if rule.add is not None:
                parts.append(self._component(rule, v, per, trace))
            if rule.stop:
                break
        if not parts:
            return Computation("not_eligible", f"Trường hợp này không thuộc diện {calc.title.lower()}.")
        total = sum(a for _, a in parts)
        steps = [text for text, _ in parts]
        if len(parts) > 1:
            steps.append("Cộng: " + " + ".join(format_number(a) for _, a in parts) + f" = {format_money(total)}.")
        return Computation("result", f"{calc.title}: {format_money(total)}" + _unit(calc).replace("đ", "", 1) + ".",
                           steps=steps, notes=self._notes(calc, v, per, trace), values={"amount": total})

    def _component(self, rule: Rule, v: dict[str, Any], per: Period, trace: _Trace) -> tuple[str, int]:
        c = rule.add
        assert c is not None
        count = int(v[c.per]) if c.per else 1
        if c.amount is not None:
            base = per.amounts[c.amount]
            amount = base * count
            text = f"{c.label}: {format_money(amount)}" if count == 1 else \
                f"{c.label}: {count} × {format_money(base)} = {format_money(amount)}"
            return text + ".", amount
        assert c.figure is not None
        fp = trace.figure(c.figure)
        fig = self.figures[c.figure]
        coef = c.coefficient if c.coefficient is not None else 1.0
        amount = round(coef * fp.amount * count)
        if c.coefficient is None and count == 1:
            return f"{c.label}: {format_money(amount)}.", amount
        lead = f"{count} × " if c.per else ""
        coef_text = format_coefficient(coef) if coef != int(coef) or coef < 10 else format_number(coef)
        return (f"{c.label}: {lead}{coef_text} × {fig.title.lower()} {format_money(fp.amount)} = "
                f"{format_money(amount)}."), amount

    # --- figures in force ---------------------------------------------------------------------------
    def _figure(self, calc: Calculator, v: dict[str, Any], on: dt.date, trace: _Trace) -> Computation:
        figs: dict[str, str] = calc.config["figures"]
        by = calc.config.get("by")
        notes = self._notes(calc, v, None, trace)
        if "all" in figs or (by is not None and v.get(by)):
            key = figs["all"] if "all" in figs else figs[str(v[str(by)])]
            fig = self.figures[key]
            fp = trace.figure(key)
            unit = fig.unit.replace("đồng", "đ")
            steps = [f"{fig.title}: {format_money(fp.amount)}{unit.replace('đ', '', 1)}, áp dụng từ "
                     f"{format_date(fp.valid_from)} ({fp.legal_basis})."]
            before = [p for p in fig.periods if p.valid_from < fp.valid_from]
            if before:
                steps.append(f"Mức trước đó (từ {format_date(before[-1].valid_from)}): "
                             f"{format_money(before[-1].amount)}.")
            later = [p for p in fig.periods if p.valid_from > on]
            if later:
                steps.append(f"Từ {format_date(later[0].valid_from)}: {format_money(later[0].amount)}.")
            return Computation("result", f"{fig.title}: {format_money(fp.amount)}{unit.replace('đ', '', 1)}.",
                               steps=steps, notes=notes, values={"amount": fp.amount})
        steps = []
        values: dict[str, Any] = {}
        for name, key in figs.items():
            fp = trace.figure(key)
            values[name] = fp.amount
            steps.append(f"{self.figures[key].title}: {format_money(fp.amount)}/tháng.")
        first = trace.figure(next(iter(figs.values())))
        return Computation("result", f"{calc.title} áp dụng từ {format_date(first.valid_from)}:",
                           steps=steps, notes=notes, values=values)


def describe_input(spec: InputSpec, value: Any) -> str:
    """How an input value is shown back to the citizen ("8.000.000 đ", "61 %", "vùng II")."""
    if spec.type == "money":
        return format_money(value)
    if spec.type == "percent":
        return f"{value} %" if not isinstance(value, str) else value.replace("-", "–") + " %"
    if spec.type == "months":
        return f"{value} tháng"
    if spec.type == "age":
        return f"{value} tuổi"
    if spec.type == "region":
        return f"vùng {value}"
    if spec.type == "count" and spec.choices and isinstance(value, int):
        top = max(int(c.value) for c in spec.choices if c.value.isdigit())
        if value >= top:
            c = spec.choice(str(top))
            return c.label if c else str(value)
    if spec.type in ("choice", "count") and spec.choices:
        c = spec.choice(str(value))
        if c:
            return c.label
    return f"{spec.label.lower()}: {value}"

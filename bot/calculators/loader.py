"""Load and validate ``knowledge/calculators/`` into ``spec`` objects; every problem as ``file:line: message``.

Files: ``_figures.yaml`` (shared amounts with their periods), ``_recognizer.yaml`` (amount cues), and one
``<id>.yaml`` per calculator. The checks an officer needs: required fields, known topic, kind, input
types and figure keys, valid dates, periods without duplicates, amounts written as in the legal text
(2.789.000, or '500.000' in quotes: YAML reads 500.000 as a decimal number), rate tables without gaps or
overlaps from the threshold to 100 %, rules that name known inputs and amounts, placeholders that exist,
button payloads of at most 64 bytes. ``load_calculators`` never returns a silently broken set: callers
check ``errors`` (``CalculatorSet.load`` raises).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.calculators.numbers import normalize
from bot.calculators.spec import (
    INPUT_TYPES,
    KINDS,
    REGIONS,
    Boost,
    Calculator,
    Choice,
    Component,
    Condition,
    Figure,
    FigurePeriod,
    InputSpec,
    Note,
    Period,
    Phrase,
    Rule,
)
from indexer import yamlio
from indexer.knowledge import KnowledgeError, load_topics

__all__ = ["Loaded", "load_calculators", "phrase", "payload", "MAX_PAYLOAD_BYTES"]

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,60}$")
FIGURE_KEY_RE = re.compile(r"^[a-z0-9_]+(?:\.[a-zA-Z0-9_]+)*$")
AMOUNT_RE = re.compile(r"^\d{1,3}(?:\.\d{3})+$")
RANGE_RE = re.compile(r"^(\d{1,3})-(\d{1,3})$")
PLACEHOLDER_RE = re.compile(r"\{([a-zA-Z0-9_.]+)(?:\*(\d+(?:[.,]\d+)?))?\}")
MAX_PAYLOAD_BYTES = 64
FIGURES_FILE = "_figures.yaml"
RECOGNIZER_FILE = "_recognizer.yaml"
TEXT_VARS = frozenset({"value"})  # {value}: the rejected value, in ``invalid`` messages


def phrase(text: str) -> Phrase:
    """A phrase as the recogniser's tokens: "Thương binh" -> ("thuong", "binh"), "một tháng" -> ("1", "thang")."""
    return tuple(tok for tok in normalize(str(text)) if re.fullmatch(r"[a-z0-9%]+", tok))


def payload(calc_id: str, name: str, value: str) -> str:
    """The button payload for one input value: ``calc:<id>:<input>=<value>``."""
    return f"calc:{calc_id}:{name}={value}"


@dataclass
class Loaded:
    calculators: dict[str, Calculator] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    amount_cues: tuple[Phrase, ...] = ()
    not_amount_after: tuple[Phrase, ...] = ()
    min_score: float = 2.0
    errors: list[KnowledgeError] = field(default_factory=list)


# --- YAML with line numbers -----------------------------------------------------------------------
_Loader = yamlio.DatesAsTextLoader


class _Ctx:
    """Errors of one file, with the line of any path (keys and list indexes) in it."""

    def __init__(self, rel: str, errors: list[KnowledgeError]) -> None:
        self.rel = rel
        self.errors = errors
        self.lines: dict[tuple[str, ...], int] = {(): 1}

    def line(self, path: tuple[Any, ...]) -> int:
        key = tuple(str(p) for p in path)
        while key not in self.lines:
            key = key[:-1]
        return self.lines[key]

    def err(self, path: tuple[Any, ...], message: str) -> None:
        self.errors.append(KnowledgeError(self.rel, self.line(path), message))

    def read(self, path: Path) -> Any:
        try:
            loader = _Loader(path.read_text(encoding="utf-8"))
            try:
                node = loader.get_single_node()
                data = loader.construct_document(node) if node is not None else None
            finally:
                loader.dispose()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            self.errors.append(KnowledgeError(self.rel, (mark.line + 1) if mark else 1,
                                              f"YAML error: {getattr(exc, 'problem', exc)}"))
            return None
        if node is not None:
            self._walk(node, ())
        return data

    def _walk(self, node: yaml.Node, path: tuple[str, ...]) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                key = str(k.value)
                if key in seen:
                    self.errors.append(KnowledgeError(self.rel, k.start_mark.line + 1, f"duplicate key '{key}'"))
                seen.add(key)
                self._walk(v, path + (key,))
                self.lines[path + (key,)] = k.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, path + (str(i),))


# --- small typed readers --------------------------------------------------------------------------
def _date(ctx: _Ctx, path: tuple[Any, ...], value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        ctx.err(path, f"bad date '{value}' (use YYYY-MM-DD)")
        return None


def _amount(ctx: _Ctx, path: tuple[Any, ...], value: Any) -> int | None:
    if isinstance(value, bool):
        ctx.err(path, f"bad amount '{value}'")
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and AMOUNT_RE.match(value.strip()):
        return int(value.strip().replace(".", ""))
    if isinstance(value, float):
        ctx.err(path, f"amount {value!r} was read as a decimal number: write it as in the legal text in "
                      "quotes ('500.000') or without dots (500000)")
        return None
    ctx.err(path, f"bad amount '{value}' (write 2.789.000 or 2789000)")
    return None


def _text(ctx: _Ctx, path: tuple[Any, ...], value: Any, required: bool = True) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            ctx.err(path, f"missing or empty field '{path[-1]}'")
        return ""
    if not isinstance(value, str | int | float):
        ctx.err(path, f"'{path[-1]}' must be text")
        return ""
    return " ".join(str(value).split())


def _texts(ctx: _Ctx, path: tuple[Any, ...], value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        ctx.err(path, f"'{path[-1]}' must be a non-empty list of texts")
        return ()
    return tuple(" ".join(v.split()) for v in value)


def _bool(ctx: _Ctx, path: tuple[Any, ...], value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        ctx.err(path, f"'{path[-1]}' must be true or false")
        return False
    return value


def _number(ctx: _Ctx, path: tuple[Any, ...], value: Any, default: float | None = None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        ctx.err(path, f"'{path[-1]}' must be a number")
        return default
    return float(value)


def _range(ctx: _Ctx, path: tuple[Any, ...], value: Any) -> tuple[int, int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    m = RANGE_RE.match(str(value).strip())
    if not m or int(m.group(1)) > int(m.group(2)):
        ctx.err(path, f"bad range '{value}' (write 61 or 41-50)")
        return None
    return int(m.group(1)), int(m.group(2))


# --- figures and cues -----------------------------------------------------------------------------
def _rel(path: Path, directory: Path) -> str:
    """``knowledge/calculators/x.yaml``: the path from the knowledge base's parent, as the knowledge checker."""
    try:
        return str(path.relative_to(directory.parent.parent))
    except ValueError:
        return str(path)


def _load_figures(path: Path, directory: Path, out: Loaded) -> None:
    ctx = _Ctx(_rel(path, directory), out.errors)
    data = ctx.read(path)
    figs = data.get("figures") if isinstance(data, dict) else None
    if not isinstance(figs, dict) or not figs:
        ctx.err(("figures",), "_figures.yaml must have a 'figures' mapping: key -> title, unit, periods")
        return
    for key, raw in figs.items():
        p: tuple[Any, ...] = ("figures", key)
        if not FIGURE_KEY_RE.match(str(key)):
            ctx.err(p, f"bad figure key '{key}' (lower-case words with '_' and '.')")
            continue
        if not isinstance(raw, dict):
            ctx.err(p, "a figure needs title, unit and periods")
            continue
        periods = []
        raw_periods = raw.get("periods")
        if not isinstance(raw_periods, list) or not raw_periods:
            ctx.err(p + ("periods",), "a figure needs a non-empty list of periods")
            continue
        seen: set[dt.date] = set()
        for i, rp in enumerate(raw_periods):
            pp = p + ("periods", i)
            if not isinstance(rp, dict):
                ctx.err(pp, "a period needs valid_from, amount and legal_basis")
                continue
            vf = _date(ctx, pp + ("valid_from",), rp.get("valid_from"))
            amount = _amount(ctx, pp + ("amount",), rp.get("amount"))
            basis = _text(ctx, pp + ("legal_basis",), rp.get("legal_basis"))
            nr = _bool(ctx, pp + ("needs_review",), rp.get("needs_review"))
            if vf in seen:
                ctx.err(pp + ("valid_from",), f"two periods start on {vf}")
            if vf is None or amount is None or not basis:
                continue
            seen.add(vf)
            periods.append(FigurePeriod(vf, amount, basis, nr, _text(ctx, pp, rp.get("review_note"), False),
                                        ctx.line(pp)))
        periods.sort(key=lambda fp: fp.valid_from)
        out.figures[str(key)] = Figure(str(key), _text(ctx, p + ("title",), raw.get("title")),
                                       _text(ctx, p + ("unit",), raw.get("unit"), False) or "đồng",
                                       tuple(periods), ctx.rel, ctx.line(p))


def _load_cues(path: Path, directory: Path, out: Loaded) -> None:
    ctx = _Ctx(_rel(path, directory), out.errors)
    data = ctx.read(path)
    if not isinstance(data, dict):
        ctx.err((), "_recognizer.yaml must have 'amount_cues' and 'not_amount_after' lists")
        return
    out.amount_cues = tuple(phrase(c) for c in _texts(ctx, ("amount_cues",), data.get("amount_cues")))
    out.not_amount_after = tuple(phrase(c) for c in _texts(ctx, ("not_amount_after",), data.get("not_amount_after")))
    out.min_score = _number(ctx, ("min_score",), data.get("min_score"), 2.0) or 2.0


# --- one calculator -------------------------------------------------------------------------------
class _CalcReader:
    def __init__(self, ctx: _Ctx, out: Loaded, topics: set[str] | None) -> None:
        self.ctx = ctx
        self.out = out
        self.topics = topics

    def read(self, d: dict[str, Any]) -> Calculator | None:
        ctx = self.ctx
        ok_before = len(ctx.errors)
        cid = _text(ctx, ("id",), d.get("id"))
        if cid and not ID_RE.match(cid):
            ctx.err(("id",), f"bad id '{cid}' (use lower-case letters, digits, '-')")
        if cid in self.out.calculators:
            ctx.err(("id",), f"duplicate calculator id '{cid}' (also in {self.out.calculators[cid].file})")
        kind = _text(ctx, ("kind",), d.get("kind"))
        if kind and kind not in KINDS:
            ctx.err(("kind",), f"unknown kind '{kind}' (one of: {', '.join(KINDS)})")
        topic = _text(ctx, ("topic",), d.get("topic"))
        if topic and self.topics is not None and topic not in self.topics:
            ctx.err(("topic",), f"unknown topic '{topic}' (see knowledge/topics.yaml)")
        title = _text(ctx, ("title",), d.get("title"))
        summary = _text(ctx, ("summary",), d.get("summary"))
        keywords = self._keywords(d.get("keywords"))
        inputs = self._inputs(cid, d.get("inputs") or {})
        names = {s.name for s in inputs}
        boosts = self._boosts(d.get("boost") or [], names)
        periods = self._periods(kind, d, names)
        rules = self._rules(("rules",), d.get("rules"), names, periods) if "rules" in d else ()
        notes = self._notes(d.get("notes") or [], names, periods)
        config = self._config(kind, d, inputs, periods)
        config["exclude"] = tuple(phrase(x) for x in (d.get("exclude") or []))
        if kind == "rules" and not rules and not all(p.data.get("rules") for p in periods):
            ctx.err(("rules",), "a rules calculator needs 'rules' (or rules in every period)")
        if len(ctx.errors) > ok_before or not (cid and kind in KINDS and topic and title):
            return None
        return Calculator(cid, kind, topic, title, summary, keywords, inputs, periods, notes, rules, boosts,
                          config, ctx.rel, 1)

    def _keywords(self, raw: Any) -> tuple[tuple[Phrase, float], ...]:
        out = []
        if not isinstance(raw, list) or not raw:
            self.ctx.err(("keywords",), "keywords must be a non-empty list (a phrase, or 'phrase: weight')")
            return ()
        for i, item in enumerate(raw):
            if isinstance(item, dict) and len(item) == 1:
                (text, weight), = item.items()
            else:
                text, weight = item, None
            ph = phrase(text)
            w = _number(self.ctx, ("keywords", i), weight, float(len(ph)))
            if not ph or not w or w <= 0:
                self.ctx.err(("keywords", i), f"bad keyword '{item}'")
                continue
            out.append((ph, w))
        return tuple(out)

    def _inputs(self, cid: str, raw: Any) -> tuple[InputSpec, ...]:
        ctx = self.ctx
        if not isinstance(raw, dict):
            ctx.err(("inputs",), "inputs must be a mapping: name -> type, label, ask...")
            return ()
        specs = []
        for name, d in raw.items():
            p: tuple[Any, ...] = ("inputs", name)
            if not re.match(r"^[a-z][a-z0-9_]*$", str(name)):
                ctx.err(p, f"bad input name '{name}'")
                continue
            if not isinstance(d, dict):
                ctx.err(p, "an input needs type and label")
                continue
            itype = _text(ctx, p + ("type",), d.get("type"))
            if itype and itype not in INPUT_TYPES:
                ctx.err(p + ("type",), f"unknown input type '{itype}' (one of: {', '.join(INPUT_TYPES)})")
                continue
            optional = _bool(ctx, p + ("optional",), d.get("optional"))
            label = _text(ctx, p + ("label",), d.get("label"))
            ask = _text(ctx, p + ("ask",), d.get("ask"), required=not optional and itype != "flag")
            choices = self._choices(cid, str(name), p + ("choices",), d.get("choices"), itype)
            if itype == "choice" and not choices:
                ctx.err(p + ("choices",), "a choice input needs choices")
            default = d.get("default")
            if default is not None and not any(c.value == str(default) for c in choices):
                ctx.err(p + ("default",), f"default '{default}' is not one of the choices")
            lo = _number(ctx, p + ("min",), d.get("min"))
            hi = _number(ctx, p + ("max",), d.get("max"))
            if itype in ("months", "money", "percent", "age", "count") and (lo is None or hi is None or lo >= hi):
                ctx.err(p, f"a {itype} input needs min < max")
            detect: list[tuple[str, tuple[Phrase, ...]]] = []
            raw_detect = d.get("detect")
            if itype == "flag":
                detect.append(("true", tuple(phrase(x) for x in _texts(ctx, p + ("detect",), raw_detect))))
            elif itype == "count" and raw_detect is not None:
                if not isinstance(raw_detect, dict):
                    ctx.err(p + ("detect",), "detect of a count input maps a number to phrases")
                else:
                    for value, phrases in raw_detect.items():
                        detect.append((str(value), tuple(phrase(x) for x in _texts(ctx, p + ("detect", value), phrases))))
            buttons = tuple(str(b) for b in (d.get("buttons") or []))
            for j, b in enumerate(buttons):
                r = _range(ctx, p + ("buttons", j), b)
                if r and lo is not None and hi is not None and not (lo <= r[0] <= r[1] <= hi):
                    ctx.err(p + ("buttons", j), f"button range {b} is outside {lo:g}-{hi:g}")
                if len(payload(cid, str(name), b).encode()) > MAX_PAYLOAD_BYTES:
                    ctx.err(p + ("buttons", j), f"button payload longer than {MAX_PAYLOAD_BYTES} bytes")
            specs.append(InputSpec(
                name=str(name), type=itype, label=label, ask=ask, optional=optional, min=lo, max=hi,
                choices=choices, default=str(default) if default is not None else None,
                after=tuple(phrase(x) for x in (d.get("after") or [])),
                count_of=tuple(phrase(x) for x in (d.get("count_of") or [])),
                detect=tuple(detect), buttons=buttons,
                invalid=_text(ctx, p + ("invalid",), d.get("invalid"), False), line=ctx.line(p),
            ))
            if itype == "count" and not specs[-1].count_of:
                ctx.err(p + ("count_of",), "a count input needs count_of (the noun counted)")
        return tuple(specs)

    def _choices(self, cid: str, name: str, p: tuple[Any, ...], raw: Any, itype: str) -> tuple[Choice, ...]:
        ctx = self.ctx
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            ctx.err(p, "choices must map a value to a label (or to label, detect, ages)")
            return ()
        out = []
        for value, d in raw.items():
            cp = p + (value,)
            value = str(value)
            if itype == "region" and value not in REGIONS:
                ctx.err(cp, f"a region is one of {', '.join(REGIONS)}")
            if len(payload(cid, name, value).encode()) > MAX_PAYLOAD_BYTES:
                ctx.err(cp, f"button payload '{payload(cid, name, value)}' is longer than {MAX_PAYLOAD_BYTES} bytes")
            if isinstance(d, str):
                out.append(Choice(value, d))
                continue
            if not isinstance(d, dict):
                ctx.err(cp, "a choice is a label, or a mapping with label, detect, ages")
                continue
            detect = []
            for alt in (d.get("detect") or []):
                detect.append(tuple(phrase(x) for x in str(alt).split("+") if phrase(x)))
            ages = _range(ctx, cp + ("ages",), d["ages"]) if "ages" in d else None
            out.append(Choice(value, _text(ctx, cp + ("label",), d.get("label")), tuple(detect), ages,
                              _bool(ctx, cp + ("button",), d.get("button", True))))
        aged = [c.ages for c in out if c.ages]
        if aged and len(aged) != len(out):
            ctx.err(p, "either every choice has 'ages' or none")
        aged.sort()
        for a, b in zip(aged, aged[1:], strict=False):
            if b[0] <= a[1]:
                ctx.err(p, f"age ranges {a[0]}-{a[1]} and {b[0]}-{b[1]} overlap")
        return tuple(out)

    def _boosts(self, raw: Any, names: set[str]) -> tuple[Boost, ...]:
        out = []
        for i, b in enumerate(raw if isinstance(raw, list) else []):
            if not isinstance(b, dict) or b.get("input") not in names:
                self.ctx.err(("boost", i), "a boost names one of the inputs: {input, when, weight}")
                continue
            out.append(Boost(str(b["input"]), b.get("when"), _number(self.ctx, ("boost", i), b.get("weight"), 1.0) or 1.0))
        return tuple(out)

    def _periods(self, kind: str, d: dict[str, Any], names: set[str]) -> tuple[Period, ...]:
        ctx = self.ctx
        raw = d.get("periods")
        if kind == "figure":
            if raw:
                ctx.err(("periods",), "a figure calculator takes its periods from _figures.yaml")
            return ()
        if not isinstance(raw, list) or not raw:
            ctx.err(("periods",), "periods must be a non-empty list (valid_from, legal_basis, ...)")
            return ()
        out = []
        seen: set[dt.date] = set()
        for i, rp in enumerate(raw):
            p: tuple[Any, ...] = ("periods", i)
            if not isinstance(rp, dict):
                ctx.err(p, "a period needs valid_from and legal_basis")
                continue
            vf = _date(ctx, p + ("valid_from",), rp.get("valid_from"))
            if vf in seen:
                ctx.err(p + ("valid_from",), f"two periods start on {vf}")
            basis = _texts(ctx, p + ("legal_basis",), rp.get("legal_basis"))
            nr = _bool(ctx, p + ("needs_review",), rp.get("needs_review"))
            note = _text(ctx, p + ("review_note",), rp.get("review_note"), required=nr)
            amounts: dict[str, int] = {}
            for key, value in (rp.get("amounts") or {}).items():
                a = _amount(ctx, p + ("amounts", key), value)
                if a is not None:
                    amounts[str(key)] = a
            data = self._period_data(kind, p, rp, names)
            if vf is None or not basis:
                continue
            seen.add(vf)
            out.append(Period(vf, basis, nr, note, _text(ctx, p + ("document",), rp.get("document"), False),
                              amounts, data, ctx.line(p)))
        out.sort(key=lambda x: x.valid_from)
        # Every period declares the same amounts, so a rule or note never misses one.
        if out:
            first = set(out[0].amounts)
            for i, per in enumerate(out[1:], start=1):
                if set(per.amounts) != first:
                    ctx.err(("periods", i, "amounts"),
                            f"amounts differ between periods: {sorted(first ^ set(per.amounts))}")
        return tuple(out)

    def _period_data(self, kind: str, p: tuple[Any, ...], rp: dict[str, Any], names: set[str]) -> dict[str, Any]:
        ctx = self.ctx
        if kind == "unemployment":
            data: dict[str, Any] = {}
            for key in ("rate_percent", "cap_multiplier", "min_months", "first_months", "first_benefit",
                        "step_months", "max_benefit"):
                value = _number(ctx, p + (key,), rp.get(key))
                if value is None or value <= 0:
                    ctx.err(p + (key,), f"missing or bad '{key}'")
                data[key] = value
            cap = _text(ctx, p + ("cap_figure",), rp.get("cap_figure"))
            for region in REGIONS:
                if cap and f"{cap}.{region}" not in self.out.figures:
                    ctx.err(p + ("cap_figure",), f"no figure '{cap}.{region}' in _figures.yaml")
            data["cap_figure"] = cap
            data["start"] = _text(ctx, p + ("start",), rp.get("start"))
            data["notes"] = tuple(" ".join(str(n).split()) for n in (rp.get("notes") or []))
            return data
        if kind == "rate_table":
            tables: dict[str, tuple[tuple[int, int, int], ...]] = {}
            raw_tables = rp.get("tables")
            if not isinstance(raw_tables, dict) or not raw_tables:
                ctx.err(p + ("tables",), "a rate_table period needs 'tables' (table name -> rate: amount)")
                return {"tables": tables}
            for name, rows in raw_tables.items():
                tp = p + ("tables", name)
                if not isinstance(rows, dict) or not rows:
                    ctx.err(tp, "a table maps a rate (61) or a range (41-50) to an amount")
                    continue
                parsed = []
                for key, value in rows.items():
                    r = _range(ctx, tp + (key,), key)
                    a = _amount(ctx, tp + (key,), value)
                    if r and a:
                        parsed.append((r[0], r[1], a))
                parsed.sort()
                for (lo1, hi1, _), (lo2, hi2, _) in zip(parsed, parsed[1:], strict=False):
                    if lo2 <= hi1:
                        ctx.err(tp, f"rates {lo1}-{hi1} and {lo2}-{hi2} overlap")
                    elif lo2 != hi1 + 1:
                        ctx.err(tp, f"no amount for rates {hi1 + 1}-{lo2 - 1}")
                tables[str(name)] = tuple(parsed)
            return {"tables": tables}
        if kind == "rules" and "rules" in rp:
            return {"rules": self._rules(p + ("rules",), rp.get("rules"), names, None)}
        return {}

    def _condition(self, p: tuple[Any, ...], raw: Any, names: set[str]) -> Condition:
        if raw is None:
            return Condition()
        if not isinstance(raw, dict):
            self.ctx.err(p, "'when' maps input names to values (61, \">=81\", 75-79, [a, b], true, null)")
            return Condition()
        for name in raw:
            if name not in names:
                self.ctx.err(p + (name,), f"'when' names an unknown input '{name}'")
        return Condition(tuple((str(k), v) for k, v in raw.items()))

    def _rules(self, p: tuple[Any, ...], raw: Any, names: set[str], periods: tuple[Period, ...] | None) -> tuple[Rule, ...]:
        ctx = self.ctx
        if not isinstance(raw, list) or not raw:
            ctx.err(p, "rules must be a non-empty list")
            return ()
        out = []
        for i, r in enumerate(raw):
            rp = p + (i,)
            if not isinstance(r, dict):
                ctx.err(rp, "a rule is {when, add} or {when, not_eligible}")
                continue
            when = self._condition(rp + ("when",), r.get("when"), names)
            add = None
            if "add" in r:
                a = r["add"]
                if not isinstance(a, dict):
                    ctx.err(rp + ("add",), "add needs label and amount, figure or coefficient + figure")
                    continue
                add = Component(
                    label=_text(ctx, rp + ("add", "label"), a.get("label")),
                    amount=str(a["amount"]) if a.get("amount") is not None else None,
                    figure=str(a["figure"]) if a.get("figure") is not None else None,
                    coefficient=_number(ctx, rp + ("add", "coefficient"), a.get("coefficient")),
                    per=str(a["per"]) if a.get("per") is not None else None,
                )
                if (add.amount is None) == (add.figure is None):
                    ctx.err(rp + ("add",), "add needs exactly one of 'amount' or 'figure'")
                if add.figure is not None and add.figure not in self.out.figures:
                    ctx.err(rp + ("add", "figure"), f"unknown figure '{add.figure}' (see _figures.yaml)")
                if add.amount is not None and periods is not None:
                    for per in periods:
                        if add.amount not in per.amounts:
                            ctx.err(rp + ("add", "amount"), f"amount '{add.amount}' missing in the period from {per.valid_from}")
                if add.per is not None and add.per not in names:
                    ctx.err(rp + ("add", "per"), f"'per' names an unknown input '{add.per}'")
            not_eligible = _text(ctx, rp + ("not_eligible",), r.get("not_eligible"), required=add is None)
            if add is not None and not_eligible:
                ctx.err(rp, "a rule either adds an amount or says not_eligible, not both")
            self._check_placeholders(rp + ("not_eligible",), not_eligible, names, periods)
            out.append(Rule(when, add, not_eligible, _bool(ctx, rp + ("stop",), r.get("stop")), ctx.line(rp)))
        return tuple(out)

    def _notes(self, raw: Any, names: set[str], periods: tuple[Period, ...]) -> tuple[Note, ...]:
        out = []
        for i, n in enumerate(raw if isinstance(raw, list) else [None]):
            if not isinstance(n, dict) or not isinstance(n.get("text"), str):
                self.ctx.err(("notes", i), "a note is {text, when (optional)}")
                continue
            text = " ".join(n["text"].split())
            self._check_placeholders(("notes", i, "text"), text, names, periods)
            out.append(Note(text, self._condition(("notes", i, "when"), n.get("when"), names)))
        return tuple(out)

    def _check_placeholders(self, p: tuple[Any, ...], text: str, names: set[str],
                            periods: tuple[Period, ...] | None) -> None:
        for name, _mult in PLACEHOLDER_RE.findall(text):
            if name in names or name in TEXT_VARS or name in self.out.figures:
                continue
            if periods is not None and periods and all(name in per.amounts for per in periods):
                continue
            if periods is None:  # period-level rule: checked against that period's amounts by the engine
                continue
            self.ctx.err(p, f"unknown placeholder '{{{name}}}' (an input, an amount of every period or a figure)")

    def _config(self, kind: str, d: dict[str, Any], inputs: tuple[InputSpec, ...],
                periods: tuple[Period, ...]) -> dict[str, Any]:
        ctx = self.ctx
        names = {s.name for s in inputs}
        if kind == "unemployment":
            for need in ("months", "salary", "region"):
                if need not in names:
                    ctx.err(("inputs",), f"an unemployment calculator needs the input '{need}'")
            for i, per in enumerate(periods):
                for note in per.data.get("notes", ()):
                    self._check_placeholders(("periods", i, "notes"), note, names, periods)
            return {}
        if kind == "rate_table":
            rate = next((s.name for s in inputs if s.type == "percent"), None)
            if rate is None:
                ctx.err(("inputs",), "a rate_table calculator needs a percent input")
            table_input = d.get("table_input")
            tables = d.get("tables") or {"A": ""}
            if not isinstance(tables, dict):
                ctx.err(("tables",), "tables maps a table name to its source (Phụ lục II)")
                tables = {}
            if table_input is not None and table_input not in names:
                ctx.err(("table_input",), f"unknown input '{table_input}'")
            threshold = _number(ctx, ("threshold",), d.get("threshold"))
            if threshold is None:
                ctx.err(("threshold",), "missing 'threshold' (the lowest rate with a monthly allowance)")
            for i, per in enumerate(periods):
                have = per.data.get("tables", {})
                for name in tables:
                    rows = have.get(str(name))
                    if not rows:
                        ctx.err(("periods", i, "tables"), f"table '{name}' missing in the period from {per.valid_from}")
                    elif threshold is not None and (rows[0][0] != threshold or rows[-1][1] != 100):
                        ctx.err(("periods", i, "tables", name),
                                f"table '{name}' must cover {threshold:g}-100 % (has {rows[0][0]}-{rows[-1][1]})")
                    elif rate is not None:
                        spec = next(s for s in inputs if s.name == rate)
                        for j, b in enumerate(spec.buttons):
                            lo, hi = (int(x) for x in (b.split("-") + [b])[:2])
                            if len({a for (x, y, a) in rows if not (y < lo or x > hi)}) > 1:
                                ctx.err(("inputs", rate, "buttons", j),
                                        f"button {b} spans several amounts of table '{name}'")
            below = d.get("below") or {}
            one_off = below.get("one_off") if isinstance(below, dict) else None
            bands = []
            if one_off is not None:
                if not isinstance(one_off, dict) or one_off.get("figure") not in self.out.figures:
                    ctx.err(("below", "one_off"), "one_off needs a known 'figure', 'legal_basis', 'label' and 'bands'")
                else:
                    for key, coef in (one_off.get("bands") or {}).items():
                        r = _range(ctx, ("below", "one_off", "bands", key), key)
                        c = _number(ctx, ("below", "one_off", "bands", key), coef)
                        if r and c:
                            bands.append((r[0], r[1], c))
            below_text = _text(ctx, ("below", "text"), below.get("text") if isinstance(below, dict) else None)
            self._check_placeholders(("below", "text"), below_text, names, periods)
            return {
                "rate_input": rate, "table_input": table_input, "tables": {str(k): str(v) for k, v in tables.items()},
                "threshold": threshold, "below_text": below_text,
                "one_off": None if not bands or not isinstance(one_off, dict) else {
                    "figure": one_off["figure"], "bands": tuple(sorted(bands)),
                    "legal_basis": _text(ctx, ("below", "one_off", "legal_basis"), one_off.get("legal_basis")),
                    "label": _text(ctx, ("below", "one_off", "label"), one_off.get("label")),
                },
            }
        if kind == "figure":
            figs = d.get("figures")
            if not isinstance(figs, dict) or not figs:
                ctx.err(("figures",), "a figure calculator needs 'figures' (all: key, or region -> key)")
                return {}
            for key, fig in figs.items():
                if fig not in self.out.figures:
                    ctx.err(("figures", key), f"unknown figure '{fig}' (see _figures.yaml)")
            by = next((s.name for s in inputs if s.type == "region"), None)
            if "all" not in figs and by is None:
                ctx.err(("figures",), "figures by region need a region input")
            return {"figures": {str(k): str(v) for k, v in figs.items()}, "by": by}
        if kind == "rules":
            return {"unit": _text(ctx, ("unit",), d.get("unit"), False) or "đ/tháng"}
        return {}


def load_calculators(directory: Path, topics: set[str] | None = None) -> Loaded:
    """Read and validate every file of ``directory`` (knowledge/calculators). Check ``errors``.

    ``topics``: the allowed topic ids; by default those of ``<directory>/../topics.yaml`` when present.
    """
    directory = Path(directory)
    out = Loaded()
    if topics is None and (directory.parent / "topics.yaml").exists():
        topics = set(load_topics(directory.parent))
    figures = directory / FIGURES_FILE
    if figures.exists():
        _load_figures(figures, directory, out)
    else:
        out.errors.append(KnowledgeError(str(figures), 1, "missing _figures.yaml"))
    cues = directory / RECOGNIZER_FILE
    if cues.exists():
        _load_cues(cues, directory, out)
    else:
        out.errors.append(KnowledgeError(str(cues), 1, "missing _recognizer.yaml"))
    for path in sorted(directory.glob("*.y*ml")):
        if path.name.startswith("_"):
            continue
        ctx = _Ctx(_rel(path, directory), out.errors)
        before = len(out.errors)
        data = ctx.read(path)
        if data is None and len(out.errors) > before:
            continue
        if not isinstance(data, dict):
            ctx.err((), "a calculator file is a mapping (id, kind, topic, title, inputs, periods...)")
            continue
        calc = _CalcReader(ctx, out, topics).read(data)
        if calc is not None:
            out.calculators[calc.id] = calc
    return out

"""Notification texts: templates kept as data (templates/notifications.toml), rendered
with Jinja2 in the recipient's language, naming the work order, its order and the time
left to the minute. Compiled once per process."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from jinja2 import Environment, StrictUndefined, Template

from collabdesk.domain.model import WorkOrder

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"


@dataclass(frozen=True)
class Rendered:
    kind: str  # the inbox kind
    channels: tuple[str, ...]  # besides the inbox: "sms", "email"
    text: str  # the card and the SMS
    subject: str
    body: str  # the email


@dataclass(frozen=True)
class _Template:
    kind: str
    channels: tuple[str, ...]
    text: dict[str, Template]
    subject: dict[str, Template]
    detail: dict[str, Template]


class Catalogue:
    def __init__(self, data: dict[str, Any]) -> None:
        env = Environment(undefined=StrictUndefined, autoescape=False,  # noqa: S701 - text
                          keep_trailing_newline=False)
        self.labels: dict[str, dict[str, str]] = data.pop("labels")
        self.ref = {lang: env.from_string(src) for lang, src in data.pop("ref").items()}
        self.templates: dict[str, _Template] = {}
        for name, spec in data.items():
            by_lang = {lang: spec[lang] for lang in LANGUAGES}
            self.templates[name] = _Template(
                spec["kind"], tuple(spec["channels"]),
                {lang: env.from_string(v["text"]) for lang, v in by_lang.items()},
                {lang: env.from_string(v.get("subject", v["text"]))
                 for lang, v in by_lang.items()},
                {lang: env.from_string(v["detail"]) for lang, v in by_lang.items()
                 if "detail" in v})

    def render(self, name: str, language: str, wo: WorkOrder | None, now: datetime,
               **values: Any) -> Rendered:
        lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
        tpl = self.templates[name]
        labels = self.labels[lang]
        context: dict[str, Any] = {"label": lambda code: labels.get(str(code), str(code)),
                                   **values}
        if wo is not None:
            context["wo"] = wo
            context["ref"] = self.ref[lang].render(wo=wo)
            if wo.due_at is not None:
                context["due"] = minute(wo.due_at)
                context["left"] = time_left(wo.due_at - now, lang)
        for key in [k for k, v in values.items() if isinstance(v, datetime)]:
            context[key] = minute(values[key])
            context[key + "_left"] = time_left(values[key] - now, lang)
        text = tpl.text[lang].render(context)
        detail = tpl.detail[lang].render(context) if lang in tpl.detail else ""
        return Rendered(tpl.kind, tpl.channels, text, tpl.subject[lang].render(context),
                        text + ("\n\n" + detail if detail else ""))


def minute(at: datetime) -> str:
    """2026-11-29 08:00 UTC: a deadline, to the minute."""
    return at.strftime("%Y-%m-%d %H:%M UTC")


def time_left(left: timedelta, language: str) -> str:
    """Whole minutes left, rounded down (a deadline is never overstated): 23小时59分 /
    23 h 59 min; none left reads 0分 / 0 min."""
    minutes = max(int(left.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if language == "en":
        parts = [f"{days} d"] if days else []
        parts += [f"{hours} h"] if hours or days else []
        return " ".join([*parts, f"{mins} min"])
    out = f"{days}天" if days else ""
    out += f"{hours}小时" if hours or days else ""
    return out + f"{mins}分"


@functools.cache
def catalogue() -> Catalogue:
    source = resources.files("collabdesk.services").joinpath("templates/notifications.toml")
    return Catalogue(tomllib.loads(source.read_text(encoding="utf-8")))

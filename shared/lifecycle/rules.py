"""Retention rules: product family and name pattern -> days kept after publication, or never.

An ordered list; the first rule whose family and pattern both match a product decides; no rule matching
means the product is never evicted (as in the reference). A pattern is a shell glob (``fnmatchcase``:
``*``, ``?``, ``[ABC]``) matched against the *whole* product name, case-sensitively.

Why a glob and examples: the reference wrote regexes as prefixes (``S1[ABCD]_AUX_TRO``) and matched
them with Java's full-match ``Pattern.matches``, so they never matched a real name and its 180-day
AUX_TRO rule silently fell to "no policy" (production-common.md §5). A glob shows its anchoring in
the pattern itself (``S1?_AUX_TRO_*`` ends in ``*`` because names go on), and every rule with a
pattern must list example names: loading fails, naming the rule, when an example does not match its
own pattern or is taken by an earlier rule — so a rule that can never fire is found when it is loaded,
not years later.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_RULES_FILE = Path(__file__).with_name("retention.yaml")
ANY_FAMILY = "*"
NEVER = "never"


class RulesError(ValueError):
    """The retention rules cannot be used; the message names the file and the rule."""


class RetentionRule(BaseModel):
    """One rule of the file (see retention.yaml for the fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    families: tuple[str, ...] = Field(alias="family", min_length=1)
    pattern: str = Field("*", min_length=1)
    days: float | Literal["never"] = Field(description="days kept after publication, or never")
    examples: tuple[str, ...] = ()

    @field_validator("families", mode="before")
    @classmethod
    def _families(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("families")
    @classmethod
    def _known_families(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from shared.products.families import FAMILIES

        unknown = [f for f in value if f != ANY_FAMILY and f not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown product family {', '.join(unknown)} (a reference family name, or '*')")
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: float | str) -> float | str:
        if isinstance(value, float | int) and not 0 <= value <= 36500:
            raise ValueError(f"days must be between 0 and 36500, or 'never' (got {value})")
        return value

    @property
    def never(self) -> bool:
        return self.days == NEVER

    def covers_family(self, family: str) -> bool:
        return ANY_FAMILY in self.families or family in self.families

    def matches(self, family: str, name: str) -> bool:
        return self.covers_family(family) and fnmatch.fnmatchcase(name, self.pattern)

    def eviction_time(self, published: datetime) -> datetime | None:
        return None if self.days == NEVER else published + timedelta(days=float(self.days))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "family": list(self.families), "pattern": self.pattern,
                "days": self.days, "examples": list(self.examples)}  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """What the rules say about one product: the rule that decided (None: no rule, never) and its date."""

    rule: RetentionRule | None
    eviction_time: datetime | None

    @property
    def rule_name(self) -> str:
        return self.rule.name if self.rule is not None else "no rule (never)"


@dataclass(frozen=True)
class RetentionRules:
    rules: tuple[RetentionRule, ...]
    source: str

    def first_match(self, family: str, name: str) -> RetentionRule | None:
        return next((rule for rule in self.rules if rule.matches(family, name)), None)

    def verdict(self, family: str, name: str, published: datetime) -> Verdict:
        rule = self.first_match(family, name)
        return Verdict(rule, None if rule is None else rule.eviction_time(published))

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "default": NEVER, "rules": [r.to_json() for r in self.rules]}


def parse_rules(raw: Any, source: str) -> RetentionRules:
    """Rules from the YAML document ``raw``; :class:`RulesError` naming the rule at fault."""
    if not isinstance(raw, dict) or not isinstance(raw.get("rules"), list) or set(raw) != {"rules"}:
        raise RulesError(f"retention rules {source}: expected a mapping with one key, 'rules', holding a list")
    rules: list[RetentionRule] = []
    for number, item in enumerate(raw["rules"], start=1):
        label = f"rule {number}" + (f" ({item['name']!r})" if isinstance(item, dict) and "name" in item else "")
        try:
            rule = RetentionRule.model_validate(item)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'rule'}: {e['msg']}" for e in exc.errors())
            raise RulesError(f"retention rules {source}, {label}: {problems}") from None
        _check(rule, rules, f"retention rules {source}, {label}")
        rules.append(rule)
    return RetentionRules(tuple(rules), source)


def _check(rule: RetentionRule, earlier: Sequence[RetentionRule], where: str) -> None:
    if any(r.name == rule.name for r in earlier):
        raise RulesError(f"{where}: the name is used by an earlier rule")
    if rule.pattern != "*" and not rule.examples:
        raise RulesError(f"{where}: a rule with a pattern lists at least one example name it must match")
    for example in rule.examples:
        if not fnmatch.fnmatchcase(example, rule.pattern):
            raise RulesError(
                f"{where}: example {example!r} does not match the pattern {rule.pattern!r} "
                "(a glob over the whole name: end it with '*' to let the name go on)"
            )
        for family in rule.families:
            shadow = next((r for r in earlier if r.covers_family(family) and r.matches(family, example)), None)
            if shadow is not None:
                raise RulesError(f"{where}: example {example!r} is taken by the earlier rule {shadow.name!r}")


def load_rules(path: str | Path | None = None) -> RetentionRules:
    """The rules of ``path`` (the ``retention_rules_file`` setting), else the shipped defaults."""
    file = Path(path) if path else DEFAULT_RULES_FILE
    try:
        raw = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError(f"retention rules {file}: {exc}") from exc
    return parse_rules(raw, str(file))


@lru_cache(maxsize=4)
def retention_rules(path: str | None = None) -> RetentionRules:
    """The rules, loaded once per process (the catalog step asks for every product it catalogs)."""
    return load_rules(path)

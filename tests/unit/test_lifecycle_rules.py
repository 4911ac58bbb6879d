"""Retention rules: first match wins, family and pattern, never, and rules that cannot fire refused at load."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.lifecycle.rules import DEFAULT_RULES_FILE, RulesError, load_rules, parse_rules
from shared.products import recognise

PUBLISHED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
AUX_TRO = "S1__AUX_TRO_V20190805T180000_20190805T235959_G20200518T084534.SAFE"
AUX_CAL = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
GRD = "S1A_IW_GRDH_1SDV_20180227T145344_20180227T145413_020794_023A69_C0B5.SAFE"


def rules(*items: dict) -> object:
    return parse_rules({"rules": list(items)}, "test")


def test_the_first_matching_rule_wins() -> None:
    found = rules(
        {"name": "tro", "family": "AUXILIARY_FILE", "pattern": "S1?_AUX_TRO_*", "days": 180, "examples": [AUX_TRO]},
        {"name": "aux", "family": "AUXILIARY_FILE", "days": "never"},
        {"name": "late", "family": "AUXILIARY_FILE", "pattern": "*", "days": 1},
    )
    assert found.verdict("AUXILIARY_FILE", AUX_TRO, PUBLISHED).eviction_time == PUBLISHED + timedelta(days=180)
    assert found.first_match("AUXILIARY_FILE", AUX_CAL).name == "aux"


def test_never_and_no_matching_rule_both_mean_no_eviction_date() -> None:
    found = rules({"name": "aux", "family": "AUXILIARY_FILE", "days": "never"})
    assert found.verdict("AUXILIARY_FILE", AUX_CAL, PUBLISHED).eviction_time is None
    nothing = found.verdict("L1_SLICE", GRD, PUBLISHED)
    assert nothing.rule is None and nothing.eviction_time is None and nothing.rule_name == "no rule (never)"


def test_a_rule_needs_both_its_family_and_its_pattern() -> None:
    found = rules(
        {"name": "grd", "family": "L1_ACN", "pattern": "S1?_IW_GRDH_*", "days": 1, "examples": [GRD]},
        {"name": "any-grd", "family": "*", "pattern": "S1?_IW_GRDH_1S*", "days": 2, "examples": [GRD]},
    )
    assert found.first_match("L1_SLICE", GRD).name == "any-grd"  # family differs: the next rule
    assert found.first_match("L1_SLICE", AUX_CAL) is None  # family fits nothing, pattern neither
    assert found.verdict("L1_ACN", GRD, PUBLISHED).eviction_time == PUBLISHED + timedelta(days=1)


def test_fractional_days_and_zero_days_are_exact() -> None:
    found = rules(
        {"name": "half", "family": "L1_SLICE", "days": 0.5}, {"name": "zero", "family": "L2_SLICE", "days": 0}
    )
    assert found.verdict("L1_SLICE", GRD, PUBLISHED).eviction_time == PUBLISHED + timedelta(hours=12)
    assert found.verdict("L2_SLICE", GRD, PUBLISHED).eviction_time == PUBLISHED


def test_the_references_prefix_pattern_is_refused_at_load_naming_the_rule() -> None:
    # The reference's rule: regex "S1[ABCD]_AUX_TRO", full-matched, so it never matched a real name. As a glob
    # over the whole name it would not either: its example says so when the rules are loaded.
    with pytest.raises(RulesError, match=r"rule 1 \('aux-tro'\).*does not match the pattern 'S1\[ABCD\]_AUX_TRO'"):
        rules({"name": "aux-tro", "family": "AUXILIARY_FILE", "pattern": "S1[ABCD]_AUX_TRO", "days": 180,
               "examples": [AUX_TRO]})  # fmt: skip


def test_the_shipped_aux_tro_rule_really_applies_to_an_aux_tro_file() -> None:
    verdict = load_rules().verdict("AUXILIARY_FILE", AUX_TRO, PUBLISHED)
    assert verdict.rule_name == "s1-aux-tro" and verdict.eviction_time == PUBLISHED + timedelta(days=180)
    assert load_rules().verdict("AUXILIARY_FILE", AUX_CAL, PUBLISHED).eviction_time is None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "x", "family": "L9_SLICE", "days": 1}, r"rule 2 \('x'\): family: .*unknown product family L9_SLICE"),
        ({"name": "x", "family": "L1_SLICE", "days": -1}, r"rule 2 \('x'\): days"),
        ({"name": "x", "family": "L1_SLICE", "days": "forever"}, r"rule 2 \('x'\): days"),
        ({"name": "x", "family": "L1_SLICE"}, r"rule 2 \('x'\): days: Field required"),
        ({"name": "x", "family": "L1_SLICE", "pattern": "S1*", "days": 1}, r"rule 2 \('x'\): .*at least one example"),
        ({"name": "first", "family": "L1_SLICE", "days": 1}, r"rule 2 \('first'\): the name is used"),
        ({"name": "x", "family": "AUXILIARY_FILE", "pattern": "S1?_AUX_TRO_*", "days": 1, "examples": [AUX_TRO]},
         r"rule 2 \('x'\): example .* is taken by the earlier rule 'first'"),
        ({"name": "x", "family": "L1_SLICE", "days": 1, "colour": "red"}, r"rule 2 \('x'\): colour: Extra inputs"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_refused_at_load_with_a_message_naming_it(rule: dict, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        rules({"name": "first", "family": "AUXILIARY_FILE", "days": "never"}, rule)


def test_a_file_that_is_not_a_list_of_rules_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("- name: x\n")
    with pytest.raises(RulesError, match="one key, 'rules'"):
        load_rules(path)
    with pytest.raises(RulesError, match="No such file"):
        load_rules(tmp_path / "absent.yaml")


def test_every_example_of_the_shipped_rules_is_a_real_name_of_its_rules_family() -> None:
    shipped = load_rules(DEFAULT_RULES_FILE)
    assert shipped.rules, "the shipped rules are empty"
    for rule in shipped.rules:
        for example in rule.examples:
            assert recognise(example).family in rule.families, (rule.name, example)
            assert shipped.first_match(recognise(example).family, example) == rule

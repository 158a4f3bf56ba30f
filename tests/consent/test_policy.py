"""Which rule applies: jurisdiction codes matched to policies, exact before prefix."""

from __future__ import annotations

import pytest

from retainer.consent.policy import match_policy, resolve
from retainer.rulebook.playbook_models import ConsentSettings


def test_builtin_policies_eu_opt_in_for_marketing_us_opt_out() -> None:
    settings = ConsentSettings()
    assert resolve(settings, "DE", "marketing").rule == "opt_in"
    assert resolve(settings, "de ", "marketing").policy == "eu"
    assert resolve(settings, "EU", "product_updates").rule == "opt_out"
    assert resolve(settings, "US-IL", "marketing").rule == "opt_out"
    assert resolve(settings, "US", "marketing").policy == "us"
    unknown = resolve(settings, None, "marketing")
    assert (unknown.policy, unknown.rule) == ("otherwise", "opt_in")
    assert resolve(settings, "BR", "marketing").label("marketing") == \
        "BR matches no policy; otherwise marketing"
    assert resolve(settings, "DE", "marketing").label("marketing") == "EU marketing"


def test_exact_codes_win_then_the_longest_prefix() -> None:
    settings = ConsentSettings.model_validate({"jurisdictions": {
        "california": {"match": ["US-CA"], "purposes": {"marketing": "opt_in"}},
        "us_west": {"match": ["US-W*"], "default": "none"},
        "germany": {"match": ["DE"], "purposes": {"success_outreach": "opt_in"}}}})
    assert match_policy(settings, "US-CA") == "california"
    assert match_policy(settings, "US-WA") == "us_west"      # US-W* is longer than US*
    assert match_policy(settings, "US-TX") == "us"           # the built-in still applies
    assert match_policy(settings, "DE") == "germany"         # the user's policy comes first
    assert resolve(settings, "DE", "success_outreach").rule == "opt_in"
    assert resolve(settings, "US-WA", "marketing").rule == "none"


def test_without_builtins_everyone_gets_otherwise() -> None:
    settings = ConsentSettings.model_validate({"builtin_policies": False,
                                               "otherwise": "opt_out"})
    assert settings.jurisdictions == {}
    assert resolve(settings, "DE", "marketing").rule == "opt_out"


@pytest.mark.parametrize("pattern", ["*", "U*S", " "])
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="not a jurisdiction pattern"):
        ConsentSettings.model_validate({"jurisdictions": {"x": {"match": [pattern]}}})


def test_a_subdivision_follows_its_country() -> None:
    """ISO 3166-2 codes (DE-BY, GB-ENG) are in their country's policy, unless a policy
    names them (or a prefix of them) itself."""
    settings = ConsentSettings.model_validate({"jurisdictions": {
        "bavaria": {"match": ["DE-BY"], "purposes": {"marketing": "none"}}}})
    assert match_policy(settings, "DE-BE") == "eu"
    assert match_policy(settings, "gb-eng") == "eu"
    assert resolve(settings, "FR-75", "marketing").rule == "opt_in"
    assert match_policy(settings, "DE-BY") == "bavaria"
    assert match_policy(settings, "US-CA") == "us"
    assert match_policy(settings, "BR-SP") is None

"""shared.settings reads the environment as pydantic-settings did (it no longer uses it: cold start)."""

import pytest
from pydantic import ValidationError

from shared.settings import Settings, SettingsError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("K_SINK", "REFSYS_SINK", "REFSYS_OIDC_ISSUER", "REFSYS_ODATA_OIDC_ISSUER", "REFSYS_CATALOG_URL"):
        monkeypatch.delenv(name, raising=False)


def test_a_field_is_read_from_its_prefixed_name_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("refsys_catalog_pool_size", " 8 ")
    monkeypatch.setenv("REFSYS_TRUST_ETAG_MD5", "off")
    monkeypatch.setenv("REFSYS_NOT_A_SETTING", "x")  # ignored
    settings = Settings()
    assert (settings.catalog_pool_size, settings.trust_etag_md5) == (8, False)
    assert Settings().catalog_url == "sqlite:///.refsys/catalog.db"  # the default


def test_aliases_are_read_in_their_order_and_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFSYS_SINK", "http://refsys-sink")
    assert Settings().sink == "http://refsys-sink"
    monkeypatch.setenv("K_SINK", "http://k-sink")
    assert Settings().sink == "http://k-sink"  # K_SINK is the first alias
    assert Settings(REFSYS_SINK="http://argument").sink == "http://argument"  # by any of its aliases
    monkeypatch.setenv("REFSYS_OIDC_ISSUER", "https://environment")
    assert Settings(REFSYS_ODATA_OIDC_ISSUER="https://argument").oidc_issuer == "https://argument"
    monkeypatch.setenv("REFSYS_CATALOG_URL", "sqlite:///environment.db")
    assert Settings(catalog_url="sqlite:///argument.db").catalog_url == "sqlite:///argument.db"


def test_a_list_is_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFSYS_UNLISTED_FILES_WARN_FAMILIES", '["S2_L0", "S1_L0"]')
    assert Settings().unlisted_files_warn_families == ["S2_L0", "S1_L0"]
    monkeypatch.setenv("REFSYS_UNLISTED_FILES_WARN_FAMILIES", "S2_L0")
    with pytest.raises(SettingsError, match='error parsing value for field "unlisted_files_warn_families"'):
        Settings()


def test_a_bad_value_is_refused_with_the_field_and_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFSYS_CATALOG_POOL_SIZE", "0")
    with pytest.raises(ValidationError, match="catalog_pool_size\n  Input should be greater than or equal to 1"):
        Settings()
    assert Settings(catalog_pool_size=2).catalog_pool_size == 2  # an argument is taken before the environment

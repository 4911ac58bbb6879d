"""shared.settings: the environment read as pydantic-settings read it, every value what pydantic makes of it, and
pydantic left unimported for plain values (a query function's cold start)."""

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from shared.platform.embedded import function_environment
from shared.settings import DECLARED, Settings, SettingsError, pydantic_model
from tests.conftest import REPO_ROOT

# Values of every kind a setting may be given: plain ones, and ones only pydantic knows what to make of.
VALUES = ["", "0", "1", "08", "4", "17", "65", "1.5", ".5", "-1", "1e3", " 8 ", "true", "false", "off", "True", "FALSE",
          "Yes", " true", "local", "local\n", "kubernetes", "x", 0, 1, 4, 17, 4.0, 4.5, -1, 0.0, float("nan"),
          float("inf"), True, False, None, ["A"], ("A",), [1]]  # fmt: skip


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    aliases = {"K_SINK", "OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_JWKS_URL"}
    for name in list(os.environ):
        if name.upper().startswith("REFSYS_") or name.upper() in aliases:
            monkeypatch.delenv(name)


def made_of(model: type, key: str, value: object, name: str) -> str:
    try:
        made = getattr(model(**{key: value}), name)
    except ValidationError as exc:
        return str(exc)
    return f"{type(made).__name__} {made!r}"


@pytest.mark.parametrize("name", list(DECLARED))
def test_a_value_is_what_pydantic_makes_of_it(name: str) -> None:
    alias = pydantic_model().model_fields[name].validation_alias
    key = alias.choices[0] if alias is not None else name  # type: ignore[union-attr]
    for value in VALUES:
        assert made_of(Settings, key, value, name) == made_of(pydantic_model(), key, value, name), (name, value)


def test_the_settings_the_platform_gives_a_function_need_no_pydantic() -> None:
    probe = "import sys; from shared.settings import Settings; Settings(); print('pydantic' in sys.modules)"
    environment = function_environment(Settings(event_secret="s"), {"WORKERS": "2"}, "odata", "http://sink")
    done = subprocess.run([sys.executable, "-c", probe], env=environment, capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.stdout.strip() == "False", done.stderr


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

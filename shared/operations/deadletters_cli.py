"""``refsys deadletter``: the dead letters of the running platform, through its operations API (no S3 keys).

Output is JSON (``list``: one letter per line). Exit codes: 0 done, 1 refused (a bad filter, an invalid
edit, a letter that cannot be restarted), 2 something was skipped or unknown, or no platform is running.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from shared.security.cli import add_token_option, auth_headers

FILTERS = (
    ("--function", "function", "the function (Knative Service) the delivery failed to"),
    ("--type", "type", "event type, or a glob: 'org.refsys.product.*'"),
    ("--error-code", "errorCode", "HTTP status of the failed delivery: 422, 0 (no answer), or a class: 5xx"),
    ("--error", "error", "text the decoded error contains (any case)"),
    ("--subject", "subject", "glob on the subject and the product names of the event: 'S1A_IW_*'"),
    ("--since", "since", "received at or after (ISO time with zone, e.g. 2024-05-01T00:00:00Z)"),
    ("--until", "until", "received before (ISO time with zone)"),
)


def register(commands: argparse._SubParsersAction, add_data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    deadletter = commands.add_parser(
        "deadletter", help="dead-lettered events: list, count, show, restart, resubmit with edits, delete"
    )
    add_data_dir(deadletter)
    actions = deadletter.add_subparsers(required=True, metavar="ACTION", dest="action")

    listing = actions.add_parser("list", help="the dead letters, oldest first (JSON lines)")
    _filters(listing, states=True)
    listing.add_argument("--limit", type=int, default=None, help="at most this many (default: all)")
    listing.set_defaults(command=list_command)

    count = actions.add_parser("count", help="how many, by function, type and error code (JSON)")
    _filters(count, states=True)
    count.set_defaults(command=count_command)

    show = actions.add_parser("show", help="one letter: the whole event, the decoded error, its history (JSON)")
    show.add_argument("id", metavar="ID")
    show.add_argument("--state", choices=("pending", "restarted", "deleted"), default=None)
    show.set_defaults(command=show_command)

    restart = actions.add_parser("restart", help="publish dead letters again: by ID, or all that match the filters")
    restart.add_argument("ids", nargs="*", metavar="ID", help="letter ids (none: every pending letter matched)")
    _filters(restart, states=False)
    restart.set_defaults(command=restart_command)

    resubmit = actions.add_parser("resubmit", help="publish a corrected event (new id) in place of a dead letter")
    resubmit.add_argument("id", metavar="ID")
    payload = resubmit.add_mutually_exclusive_group()
    payload.add_argument("--data", help="the new payload (JSON), or @FILE")
    payload.add_argument("--patch", help="changes to the payload (JSON merge patch; null removes), or @FILE")
    resubmit.add_argument("--set", action="append", default=[], metavar="ATTR=VALUE", help="set an attribute")
    resubmit.add_argument("--unset", action="append", default=[], metavar="ATTR", help="remove an extension")
    resubmit.set_defaults(command=resubmit_command)

    delete = actions.add_parser("delete", help="put dead letters aside (kept under deleted/): by ID, or by filters")
    delete.add_argument("ids", nargs="*", metavar="ID", help="letter ids")
    _filters(delete, states=False)
    delete.add_argument("--all", action="store_true", help="with no ID and no filter: every pending letter")
    delete.set_defaults(command=delete_command)
    for action in actions.choices.values():  # after the action too: refsys deadletter list --token ...
        add_token_option(action)


def _filters(parser: argparse.ArgumentParser, *, states: bool) -> None:
    for option, _, help_text in FILTERS:
        parser.add_argument(option, help=help_text)
    parser.add_argument("--malformed", action="store_true", default=None, help="only letters that are no CloudEvent")
    if states:
        parser.add_argument("--state", choices=("pending", "restarted", "deleted"), default=None)


def _filter_of(args: argparse.Namespace) -> dict[str, Any]:
    chosen: dict[str, Any] = {key: getattr(args, option[2:].replace("-", "_")) for option, key, _ in FILTERS}
    chosen["malformed"] = args.malformed
    chosen["state"] = getattr(args, "state", None)
    return {key: value for key, value in chosen.items() if value is not None}


# -- commands -----------------------------------------------------------------------------------------------


def list_command(args: argparse.Namespace) -> int:
    api = _api(args)
    if api is None:
        return 2
    params: dict[str, Any] = {key: _param(value) for key, value in _filter_of(args).items()}
    offset, printed = 0, 0
    while True:
        status, body = api.call("GET", "", params={**params, "offset": offset, "limit": 1000})
        if status != 200:
            return _refused(status, body)
        for item in body["items"]:
            if args.limit is not None and printed >= args.limit:
                return 0
            print(json.dumps(item))
            printed += 1
        if "nextOffset" not in body:
            return 0
        offset = body["nextOffset"]


def count_command(args: argparse.Namespace) -> int:
    api = _api(args)
    if api is None:
        return 2
    params = {key: _param(value) for key, value in _filter_of(args).items()}
    return _print(*api.call("GET", "/count", params=params))


def show_command(args: argparse.Namespace) -> int:
    api = _api(args)
    if api is None:
        return 2
    params = {"state": args.state} if args.state else {}
    return _print(*api.call("GET", f"/{args.id}", params=params))


def restart_command(args: argparse.Namespace) -> int:
    return _batch(args, "restart")


def delete_command(args: argparse.Namespace) -> int:
    if not args.ids and not _filter_of(args) and not args.all:
        print("refsys: say which letters to delete: IDs, filters, or --all", file=sys.stderr)
        return 1
    return _batch(args, "delete")


def resubmit_command(args: argparse.Namespace) -> int:
    edits: dict[str, Any] = {}
    try:
        if args.data is not None:
            edits["data"] = _json_argument(args.data, "--data")
        if args.patch is not None:
            edits["dataPatch"] = _json_argument(args.patch, "--patch")
        attributes: dict[str, Any] = {}
        for item in args.set:
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--set {item!r}: give ATTR=VALUE")
            attributes[name] = value
        attributes.update({name: None for name in args.unset})
    except ValueError as exc:
        print(f"refsys: {exc}", file=sys.stderr)
        return 1
    if attributes:
        edits["attributes"] = attributes
    if not edits:
        print("refsys: nothing to change: give --data, --patch, --set or --unset", file=sys.stderr)
        return 1
    api = _api(args)
    if api is None:
        return 2
    return _print(*api.call("POST", f"/{args.id}/resubmit", json=edits))


def _batch(args: argparse.Namespace, action: str) -> int:
    api = _api(args)
    if api is None:
        return 2
    body = {"ids": args.ids} if args.ids else {"filter": _filter_of(args)}
    if args.ids and _filter_of(args):
        print("refsys: give IDs or filters, not both", file=sys.stderr)
        return 1
    status, answer = api.call("POST", f"/{action}", json=body)
    if status != 200:
        return _refused(status, answer)
    print(json.dumps(answer, indent=2))
    for skipped in answer["idsSkipped"]:
        print(f"refsys: {action} skipped {skipped['id']}: {skipped['reason']}", file=sys.stderr)
    return 2 if answer["idsSkipped"] else 0


# -- the API ------------------------------------------------------------------------------------------------


class _Api:
    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.base = base.rstrip("/") + "/deadletters"
        self.headers = headers or {}

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        import requests

        try:
            response = requests.request(method, self.base + path, headers=self.headers, timeout=300, **kwargs)
        except requests.RequestException as exc:
            return 503, {"error": {"code": "Unreachable", "message": f"the operations API does not answer: {exc}"}}
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {"error": {"code": "NotJson", "message": response.text[:500]}}


def _api(args: argparse.Namespace) -> _Api | None:
    from shared.platform.client import PlatformNotRunning, RunningPlatform

    try:
        platform = RunningPlatform.find(args.data_dir)
    except PlatformNotRunning as exc:
        print(f"refsys: {exc}", file=sys.stderr)
        return None
    base = platform.endpoints.get("operations")
    if not base:
        print("refsys: this platform runs no operations function (restart it: refsys up)", file=sys.stderr)
        return None
    return _Api(str(base), auth_headers(args))


def _print(status: int, body: Any) -> int:
    if status != 200:
        return _refused(status, body)
    print(json.dumps(body, indent=2))
    return 0


def _refused(status: int, body: Any) -> int:
    error = body.get("error", {}) if isinstance(body, dict) else {}
    print(f"refsys: {error.get('message') or body} ({status} {error.get('code', '')})".rstrip(), file=sys.stderr)
    return 2 if status in (404, 503) else 1


def _param(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _json_argument(text: str, option: str) -> Any:
    if text.startswith("@"):
        with open(text[1:]) as file:
            text = file.read()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{option} is not JSON: {exc}") from None

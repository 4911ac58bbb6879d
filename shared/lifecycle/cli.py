"""``refsys lifecycle due|evict|pin|unpin|pins|rules``: the operator's view of retention and eviction.

They talk to the running platform's ``lifecycle`` function (``endpoints.json``), as the replay commands
talk to ``operations``: no keys to the stores are needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from shared.security.cli import add_token_option, auth_headers

AddDataDir = Callable[[argparse.ArgumentParser], None]


def register(commands: argparse._SubParsersAction, add_data_dir: AddDataDir) -> None:
    lifecycle = commands.add_parser(
        "lifecycle",
        help="retention and eviction: what is due, evict, pin/unpin, the rules",
        description="Retention rules give each product its EvictionDate; the lifecycle function evicts what is "
        "due every 10 minutes (objects deleted, entry kept with Online=false). See docs/lifecycle.md.",
    )
    actions = lifecycle.add_subparsers(required=True, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text, description=help_text)
        add_data_dir(parser)
        add_token_option(parser)
        return parser

    due = action("due", "dry run: the products due now, and which a sweep would keep (pinned, job input) and why")
    due.add_argument("--limit", type=int, default=100, help="list at most this many (default 100)")
    due.set_defaults(command=_due)
    evict = action("evict", "evict one product now (its objects deleted, its entry kept with Online=false)")
    evict.add_argument("product", help="product name or id")
    evict.add_argument("--force", action="store_true", help="even if pinned or an input of a waiting/running job")
    evict.set_defaults(command=_evict)
    pin = action("pin", "never evict this product until it is unpinned")
    pin.add_argument("product", help="product name or id")
    pin.add_argument("--reason", default="", help="why it is kept (shown in `refsys lifecycle pins`)")
    pin.set_defaults(command=_pin)
    unpin = action("unpin", "give a pinned product back its retention rule's EvictionDate (due at once if passed)")
    unpin.add_argument("product", help="product name or id")
    unpin.set_defaults(command=_unpin)
    action("pins", "list the pinned products").set_defaults(command=_pins)
    action("rules", "show the retention rules in force").set_defaults(command=_rules)


def _due(args: argparse.Namespace) -> int:
    return _call(args, "GET", "/due", params={"limit": str(args.limit)})


def _evict(args: argparse.Namespace) -> int:
    return _call(args, "POST", "/evictions", body={"product": args.product, "force": args.force})


def _pin(args: argparse.Namespace) -> int:
    return _call(args, "POST", "/pins", body={"product": args.product, "reason": args.reason})


def _unpin(args: argparse.Namespace) -> int:
    return _call(args, "DELETE", f"/pins/{quote(args.product, safe='')}")


def _pins(args: argparse.Namespace) -> int:
    return _call(args, "GET", "/pins")


def _rules(args: argparse.Namespace) -> int:
    return _call(args, "GET", "/rules")


def _call(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None, params: Any = None
) -> int:
    import requests

    from shared.platform.client import PlatformNotRunning, RunningPlatform

    try:
        base = str(RunningPlatform.find(args.data_dir).endpoints["lifecycle"]).rstrip("/")
    except PlatformNotRunning as exc:
        print(f"refsys: {exc}", file=sys.stderr)
        return 2
    except KeyError:
        print("refsys: the running platform has no lifecycle function", file=sys.stderr)
        return 2
    response = requests.request(method, base + path, json=body, params=params, headers=auth_headers(args), timeout=300)
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text, file=sys.stderr)
    return 0 if response.ok else 2

"""The bearer token of the operators' commands: ``--token`` or ``REFSYS_TOKEN`` (one place for every command)."""

from __future__ import annotations

import argparse
import os

TOKEN_ENV = "REFSYS_TOKEN"


def add_token_option(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: given on a command or on its sub-command, a default of the other never overwrites it.
    parser.add_argument(
        "--token",
        default=argparse.SUPPRESS,
        help=f"OIDC access token for the operations API (default: ${TOKEN_ENV}); needed when access control is on",
    )


def auth_headers(args: argparse.Namespace) -> dict[str, str]:
    """``Authorization: Bearer <token>`` when a token was given, else nothing (an open platform)."""
    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV)
    return {"Authorization": f"Bearer {token.strip()}"} if token and token.strip() else {}

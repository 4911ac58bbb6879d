"""``refsys jobs list|show|tick|manifest``: the production jobs kept in the catalog database.

* ``refsys jobs list [--state waiting|ready|timed-out-ready] [--limit N]`` prints a JSON array of jobs,
  most recently updated first.
* ``refsys jobs show KEY`` prints one job as JSON (with its ``job.ready`` payload once it has one);
  exit 2 when there is no such job.
* ``refsys jobs tick`` evaluates the jobs whose timeout has passed (what the timer does) and prints the
  ``job.ready`` payloads it made; it does not publish them.
* ``refsys jobs manifest KEY`` prints, as JSON, the Kubernetes Job the ``launch`` function would create
  for a ready job (from its ``job.ready`` payload and the ``REFSYS_*`` settings of this environment;
  ``K_SINK`` only when set); exit 2 when there is no such job or it is not ready yet.

The database is the platform's catalog (``sqlite:///<data dir>/catalog.db``) unless ``--catalog-url``
names another (e.g. the cluster's PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from shared.processing.jobs import Job, JobState, JobStore


def register(
    commands: argparse._SubParsersAction,
    add_data_dir: Callable[[argparse.ArgumentParser], None],
) -> None:
    jobs = commands.add_parser("jobs", help="list or show production jobs", description="production jobs")
    actions = jobs.add_subparsers(required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list jobs, most recently updated first")
    listing.add_argument("--state", choices=[s.value for s in JobState], help="only jobs in this state")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.set_defaults(command=list_command)

    show = actions.add_parser("show", help="show one job")
    show.add_argument("key", help="job key, e.g. s1-aiop:L20171109175634707000125")
    show.set_defaults(command=show_command)

    tick = actions.add_parser("tick", help="evaluate the jobs whose timeout has passed")
    tick.set_defaults(command=tick_command)

    manifest = actions.add_parser("manifest", help="print the Kubernetes Job a ready job runs as")
    manifest.add_argument("key", help="job key, e.g. s1-aiop:L20171109175634707000125")
    manifest.set_defaults(command=manifest_command)

    for parser in (listing, show, tick, manifest):
        add_data_dir(parser)
        parser.add_argument("--catalog-url", help="database of the jobs (default: sqlite:///<data dir>/catalog.db)")


def catalog_url(args: argparse.Namespace) -> str:
    return str(args.catalog_url or f"sqlite:///{args.data_dir / 'catalog.db'}")


def list_command(args: argparse.Namespace) -> int:
    store = JobStore(catalog_url(args))
    try:
        state = JobState(args.state) if args.state else None
        print(json.dumps([job.to_json() for job in store.list(state, args.limit)], indent=2))
    finally:
        store.close()
    return 0


def _job(args: argparse.Namespace) -> Job | None:
    """The job ``args.key``, or None after saying there is none."""
    store = JobStore(catalog_url(args))
    try:
        job = store.get(args.key)
    finally:
        store.close()
    if job is None:
        print(f"refsys: no job {args.key!r}", file=sys.stderr)
    return job


def show_command(args: argparse.Namespace) -> int:
    job = _job(args)
    if job is None:
        return 2
    print(json.dumps(job.to_json(), indent=2))
    return 0


def manifest_command(args: argparse.Namespace) -> int:
    from events.processing import JobReady
    from shared.processing.kubernetes import job_manifest
    from shared.settings import Settings

    job = _job(args)
    if job is None:
        return 2
    if job.reply is None:
        print(f"refsys: job {args.key!r} is not ready yet ({job.state.value}): it has no Job", file=sys.stderr)
        return 2
    try:
        manifest = job_manifest(JobReady.model_validate_json(job.reply), Settings())
    except ValueError as exc:  # e.g. a payload too big for the Job's environment
        print(f"refsys: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(manifest, indent=2))
    return 0


def tick_command(args: argparse.Namespace) -> int:
    from shared.processing.config import processing_config
    from shared.processing.preparation import Preparation
    from shared.processing.queries import CatalogSelection

    url = catalog_url(args)
    store, selection = JobStore(url), CatalogSelection(url)
    try:
        ready = Preparation(processing_config(), store, selection).on_timer()
        print(json.dumps([r.model_dump(mode="json") for r in ready], indent=2))
    finally:
        selection.close()
        store.close()
    return 0

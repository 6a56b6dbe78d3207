"""``manage.py purge_anonymous``: delete stale guests (an adapter for ``purge_guests``)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from anonauth.checks import short_cutoff_problem
from anonauth.conf import conf
from anonauth.purge import PurgeResult, count_stale_guests, purge_guests

DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# At verbosity 1 a progress line is written at most this often; at 2, after every batch.
PROGRESS_INTERVAL = 5.0


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or plain seconds; positive."""
    match = DURATION.match(text)
    if match is None:
        raise CommandError(
            f"--older-than {text!r} is not a duration: use 30d, 12h, 90m, 45s, 2w or seconds."
        )
    seconds = int(match[1]) * UNIT_SECONDS[match[2].lower()]
    if seconds <= 0:
        raise CommandError("--older-than must be longer than zero.")
    return timedelta(seconds=seconds)


def parse_cutoff(text: str | None) -> timedelta:
    """``--older-than`` (default ``ANONAUTH_MAX_AGE``), refused when it would catch
    guests that are active right now."""
    older_than = conf.MAX_AGE if text is None else parse_duration(text)
    problem = short_cutoff_problem(older_than)
    if problem is not None:
        source = "ANONAUTH_MAX_AGE" if text is None else f"--older-than {text}"
        raise CommandError(f"{source} {problem}.")
    return older_than


def parse_count(value: Any, option: str) -> int | None:
    if value is None:
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise CommandError(f"{option} must be a positive integer, not {value!r}.") from None
    if count < 1:
        raise CommandError(f"{option} must be a positive integer, not {value!r}.")
    return count


class Command(BaseCommand):
    help = (
        "Delete guests not seen for a while (ANONAUTH_MAX_AGE by default) with their data "
        "and sessions, in batches of one transaction each."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            metavar="AGE",
            help="Purge guests not seen for AGE: 30d, 12h, 90m or seconds "
            "(default: ANONAUTH_MAX_AGE).",
        )
        parser.add_argument(
            "--batch-size",
            metavar="N",
            help="Guests per transaction (default: ANONAUTH_PURGE_BATCH_SIZE).",
        )
        parser.add_argument("--limit", metavar="N", help="Purge at most N guests.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = parse_cutoff(options["older_than"])
        batch_size = parse_count(options["batch_size"], "--batch-size")
        limit = parse_count(options["limit"], "--limit")
        verbosity: int = options["verbosity"]
        progress = None
        if verbosity >= 1:
            total = count_stale_guests(older_than=older_than)
            self.stdout.write(self._heading(total, older_than, limit, options["dry_run"]))
            progress = ProgressWriter(self, total, every_batch=verbosity >= 2)
        so_far: list[PurgeResult] = []

        def track(running: PurgeResult) -> None:
            so_far[:] = [running]
            if progress is not None:
                progress(running)

        try:
            result = purge_guests(
                older_than=older_than,
                batch_size=batch_size,
                limit=limit,
                dry_run=options["dry_run"],
                progress=track,
            )
        except DatabaseError as error:
            purged = so_far[0].purged if so_far else 0
            raise CommandError(
                f"The purge stopped on a database error after {_guests(purged)} "
                f"(those batches are committed; run it again to go on): {error}"
            ) from error
        if verbosity >= 1:
            self._summary(result)

    def _heading(self, total: int, older_than: timedelta, limit: int | None, dry: bool) -> str:
        cap = "" if limit is None else f", at most {limit}"
        verb = "Counting" if dry else "Purging"
        return f"{verb} stale guests: {total} not seen for {_describe(older_than)}{cap}."

    def _summary(self, result: PurgeResult) -> None:
        if result.dry_run:
            self.stdout.write(
                f"Dry run: {_guests(result.purged)} would be purged; nothing deleted."
            )
        else:
            rate = _rate(result.purged, result.seconds)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Purged {_guests(result.purged)} in {result.seconds:.1f} s ({rate}/s), "
                    f"{result.sessions} sessions."
                )
            )
            if result.deleted:
                rows = ", ".join(f"{label} {n}" for label, n in sorted(result.deleted.items()))
                self.stdout.write(f"Rows deleted: {rows}.")
        if result.spared:
            self.stdout.write(f"Spared by ANONAUTH_PURGE_SPARE: {result.spared}.")
        if result.blocked:
            by = ", ".join(f"{label} ({n})" for label, n in sorted(result.blocked_by.items()))
            ids = ", ".join(str(pk) for pk in result.blocked_ids)
            kept = "Would keep" if result.dry_run else "Kept"
            self.stdout.write(
                self.style.WARNING(
                    f"{kept} {_guests(result.blocked)} that other data protects: {by}. "
                    f"User ids: {ids}{' ...' if result.blocked > len(result.blocked_ids) else ''}"
                )
            )


class ProgressWriter:
    """Writes "done of total, rate" lines while a purge runs."""

    def __init__(self, command: BaseCommand, total: int, *, every_batch: bool) -> None:
        self.command = command
        self.total = total
        self.every_batch = every_batch
        self.last = time.monotonic()

    def __call__(self, result: PurgeResult) -> None:
        now = time.monotonic()
        if not self.every_batch and now - self.last < PROGRESS_INTERVAL:
            return
        self.last = now
        share = f" ({100 * result.examined // self.total}%)" if self.total else ""
        purged = "would be purged" if result.dry_run else "purged"
        self.command.stdout.write(
            f"  {result.examined} of {self.total} examined{share}, {result.purged} {purged}, "
            f"{_rate(result.examined, result.seconds)} guests/s"
        )


def _guests(count: int) -> str:
    return f"{count} guest{'' if count == 1 else 's'}"


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:.0f}" if seconds > 0 else "-"


def _describe(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"

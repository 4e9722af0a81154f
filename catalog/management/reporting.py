from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError

from catalog.importing.reports import ImportFailed, ImportReport
from recsite.exceptions import ApplicationError


def run_import(command: BaseCommand, do_import: Callable[[], ImportReport]) -> None:
    """Run an import for a management command: bad rows to stderr, counts to stdout."""
    try:
        report = do_import()
    except ImportFailed as exc:
        for error in exc.errors:
            command.stderr.write(str(error))
        if exc.total > len(exc.errors):
            command.stderr.write(f"... and {exc.total - len(exc.errors)} more")
        raise CommandError(exc.message) from exc
    except ApplicationError as exc:
        raise CommandError(exc.message) from exc
    for line in report.lines():
        command.stdout.write(line)
    command.stdout.write(
        command.style.SUCCESS("import done" if report.changed else "nothing changed")
    )

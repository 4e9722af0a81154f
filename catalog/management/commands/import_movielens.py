from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.downloads import MOVIELENS_SMALL_URL, movielens_download
from catalog.importing.movielens import movielens_import
from catalog.management.reporting import run_import
from recsite.exceptions import ApplicationError


class Command(BaseCommand):
    help = (
        "Import a MovieLens folder in the ml-latest-small layout (movies.csv, ratings.csv, "
        "tags.csv, links.csv) or as GroupLens ships ML-100K (u.item, u.data) and ML-1M / ML-10M "
        "(movies.dat, ratings.dat, tags.dat). Idempotent; all-or-nothing; bad rows are listed "
        "with line numbers."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "path", nargs="?", help="folder holding movies.csv (or u.item, movies.dat) etc."
        )
        parser.add_argument(
            "--download",
            action="store_true",
            help="fetch ml-latest-small from GroupLens (MD5 verified) into var/data first",
        )
        parser.add_argument(
            "--url",
            default=MOVIELENS_SMALL_URL,
            help="download URL; its checksum is read from URL.md5 (default: GroupLens)",
        )

    def handle(self, *args, path: str | None, download: bool, url: str, **options) -> None:
        if download:
            self.stdout.write(f"downloading {url} ...")
            try:
                folder = movielens_download(dest=Path(settings.BASE_DIR) / "var" / "data", url=url)
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"checksum ok, unpacked to {folder}")
        elif path:
            folder = Path(path)
        else:
            raise CommandError("give PATH (a folder with movies.csv) or --download")
        run_import(self, lambda: movielens_import(path=folder, progress=self.stdout.write))

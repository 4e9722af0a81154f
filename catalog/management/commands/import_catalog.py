from pathlib import Path

from django.core.management.base import BaseCommand

from catalog.importing.generic import catalog_csv_import
from catalog.management.reporting import run_import


class Command(BaseCommand):
    help = (
        "Import any catalog from CSV. items.csv: external_id,title[,year,description,genres,tags,url]"
        " (genres/tags separated by |; other columns kept as metadata). interactions.csv: "
        "user,item,kind[,value,timestamp] (kind: rating/like/dismiss/view; timestamp: unix or ISO)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--items", type=Path, help="items.csv")
        parser.add_argument("--interactions", type=Path, help="interactions.csv")

    def handle(self, *args, items: Path | None, interactions: Path | None, **options) -> None:
        run_import(
            self,
            lambda: catalog_csv_import(
                items_path=items, interactions_path=interactions, progress=self.stdout.write
            ),
        )

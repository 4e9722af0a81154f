import sys

from django.core.management.base import BaseCommand, CommandError

from recommender.embeddings import services
from recommender.embeddings.backends import EmbeddingError


class Command(BaseCommand):
    help = (
        "Embed every item whose text embedding is missing or stale (EMBEDDINGS_BACKEND), and "
        "build the HNSW index once there are EMBEDDINGS_HNSW_MIN_ITEMS vectors. Idempotent."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--item", type=int, action="append", help="only this item id")
        parser.add_argument(
            "--hnsw-min-items", type=int, help="index from this many vectors (default: setting)"
        )

    def handle(self, *args, item=None, hnsw_min_items=None, **options) -> None:
        def progress(fraction: float, message: str) -> None:
            sys.stderr.write(f"\r{fraction:6.1%} {message:<60}")

        try:
            report = services.embeddings_refresh(
                item_ids=item, on_progress=progress, hnsw_min_items=hnsw_min_items
            )
        except EmbeddingError as exc:
            raise CommandError(str(exc)) from exc
        sys.stderr.write("\n")
        if not report.backend:
            raise CommandError("EMBEDDINGS_BACKEND is 'none': nothing to embed with")
        self.stdout.write(
            f"{report.backend}: {report.embedded} embedded"
            f" ({report.items_per_second:.1f} items/s), {report.fresh} already fresh,"
            f" index: {'HNSW' if report.indexed else 'none (exact search)'},"
            f" {report.seconds:.1f} s"
        )

from django.core.management.base import BaseCommand, CommandError

from chat import llm, profiles


class Command(BaseCommand):
    help = (
        "Have the LLM write a short profile of each item that has none (Item.metadata"
        '["llm_profile"], editable in the admin); profiled items are then re-embedded.'
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--limit", type=int, help="at most this many items")
        parser.add_argument("--item", type=int, action="append", help="only this item id")
        parser.add_argument("--force", action="store_true", help="rewrite existing profiles")

    def handle(self, *args, limit=None, item=None, force=False, **options) -> None:
        if not llm.llm_configured():
            raise CommandError("no LLM configured (OPENAI_BASE_URL / OPENAI_API_KEY)")
        ids = item or profiles.item_profiles_missing(limit=limit)
        written = 0
        for n, item_id in enumerate(ids, start=1):
            if profiles.item_profile_generate(item_id=item_id, force=force):
                written += 1
            if n % 50 == 0:
                self.stderr.write(f"{n}/{len(ids)} items, {written} profiles")
        self.stdout.write(f"{written} profile(s) written for {len(ids)} item(s)")

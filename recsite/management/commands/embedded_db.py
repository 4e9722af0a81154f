from django.conf import settings
from django.core.management.base import BaseCommand

from recsite import embedded_db


class Command(BaseCommand):
    help = "Status or clean stop of the embedded PostgreSQL (used when DATABASE_URL is unset)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["status", "stop"])

    def handle(self, *args, action: str, **options) -> None:
        if not settings.EMBEDDED_DATABASE:
            self.stdout.write("DATABASE_URL is set: the embedded PostgreSQL is not in use.")
            return
        pgdata = embedded_db.data_dir(settings.BASE_DIR)
        if action == "status":
            pid = embedded_db.postmaster_pid(settings.BASE_DIR)
            state = f"running (pid {pid})" if pid else "stopped"
            self.stdout.write(f"embedded PostgreSQL at {pgdata}: {state}")
        else:
            from django.db import connections

            connections.close_all()
            stopped = embedded_db.stop(settings.BASE_DIR)
            self.stdout.write("stopped" if stopped else "was not running")

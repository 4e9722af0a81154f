"""First-run set-up for `make run`: a staff account, and a trained model if none is active."""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from recsite.settings.base import env


class Command(BaseCommand):
    help = "Create the admin account (once) and train a first model when none is active."

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        username = env("RECSITE_ADMIN_USER", "admin")
        secret_file = Path(settings.BASE_DIR) / "var" / "admin-password.txt"
        if not User.objects.filter(username=username).exists():
            password = env("RECSITE_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            if not env("RECSITE_ADMIN_PASSWORD"):
                secret_file.parent.mkdir(parents=True, exist_ok=True)
                secret_file.write_text(password + "\n")
                secret_file.chmod(0o600)
            self.stdout.write(f"created staff account {username!r}")
        if secret_file.exists():
            self.stdout.write(
                # no host here: the address is the server's to print (run.sh knows HOST and PORT)
                f"admin: /admin/  user {username!r}, "
                f"password in {secret_file.relative_to(settings.BASE_DIR)}"
            )
        self._train_if_needed()

    def _train_if_needed(self) -> None:
        try:
            from recommender import services
        except ImportError:
            return
        bootstrap = getattr(services, "model_bootstrap", None)
        if bootstrap is not None:
            message = bootstrap()
            if message:
                self.stdout.write(message)

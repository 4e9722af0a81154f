import json

from django.core.management.base import BaseCommand, CommandError

from recommender import selection, services
from recsite.exceptions import ApplicationError


class Command(BaseCommand):
    help = (
        "Train a new model version from the interactions in the database and activate it. "
        "Runs here, in this process, unless --enqueue is given (then a Celery worker runs it)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--model",
            default=None,
            choices=selection.TRAINABLE,
            help="default: RECOMMENDER_MODEL (auto: the per-site model selection); a model named here"
            " that cannot train this catalog fails the command unless --allow-fallback",
        )
        parser.add_argument(
            "--allow-fallback",
            action="store_true",
            help="train RECOMMENDER_LARGE_CATALOG_MODEL when the catalog is too large for the"
            " model (always allowed when --model is not given)",
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="model parameter (JSON value), repeatable",
        )
        parser.add_argument("--enqueue", action="store_true", help="only enqueue the Celery task")

    def handle(
        self,
        *args,
        model: str | None,
        param: list[str],
        enqueue: bool,
        allow_fallback: bool,
        **options,
    ) -> None:
        params = {}
        for entry in param:
            key, sep, value = entry.partition("=")
            if not sep:
                raise CommandError(f"--param takes KEY=VALUE, got {entry!r}")
            try:
                params[key] = json.loads(value)
            except json.JSONDecodeError:
                params[key] = value
        try:
            version = services.training_start(
                algorithm=model, params=params, trigger="command", enqueue=enqueue
            )
            if not enqueue:
                shown: list[str] = []

                def show(fraction: float, message: str) -> None:
                    # a stage's message once (fitting reports many fractions of one stage)
                    if not shown or shown[-1] != message:
                        shown.append(message)
                        self.stdout.write(f"[{fraction:4.0%}] {message}")
                        self.stdout.flush()

                version = (
                    services.model_train(
                        version_id=version.pk,
                        on_progress=show,
                        allow_fallback=allow_fallback or model is None,
                    )
                    or version
                )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        version.refresh_from_db()
        self.stdout.write(f"v{version.pk} {version.algorithm}: {version.status}")
        if version.timings:
            self.stdout.write(
                "timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in version.timings.items())
            )
        if version.metrics:
            self.stdout.write(
                "metrics (random split, seed 0): "
                + ", ".join(
                    f"{k} {v:.4f}" for k, v in version.metrics.items() if isinstance(v, float)
                )
            )
        if model is not None and version.algorithm != model:
            self.stdout.write(
                f"note: {model} could not train this catalog; {version.algorithm} did"
            )
        if version.status == version.Status.FAILED:
            raise CommandError(
                version.error.splitlines()[0] if version.error else "training failed"
            )

import sys

from django.core.management.base import BaseCommand, CommandError

from recommender import engine, evaluation, training_data
from recsite.exceptions import ApplicationError

# what the default is measured against when no --model is given
BASELINES = ("popularity", "itemknn", "rp3beta", "als", "bpr", "ease")


class Command(BaseCommand):
    help = (
        "Offline evaluation (docs: EVALUATION.md): Recall@20, NDCG@10, coverage, novelty, exposure "
        "Gini and fit time per model, side by side. Data: --ratings PATH.csv (MovieLens layout) "
        "or the database's interactions. Without --model: the default model beside the baselines."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--ratings", help="MovieLens-format ratings CSV (default: the database)"
        )
        parser.add_argument("--split", choices=["random", "time"], default="random")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--model",
            action="append",
            choices=sorted(engine.MODEL_NAMES),
            help="model to evaluate (repeatable); default: the served default plus baselines",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument(
            "--protocol",
            choices=["standard", "coldstart", "chat"],
            default="standard",
            help="coldstart: hold out 10%% of the items entirely and rank them for their users "
            "by text embeddings (run `manage.py embed` first) vs popularity and random; "
            "chat: simulated users talk to the chat (chat.evaluation.protocol)",
        )
        parser.add_argument("--users", type=int, default=100, help="chat: simulated users")
        parser.add_argument(
            "--llm-base-url", help="chat: an OpenAI-compatible endpoint (default: built-in)"
        )
        parser.add_argument(
            "--no-retrain",
            action="store_true",
            help="chat: use the active model as is (it has seen the held-out favourites)",
        )

    def handle(self, *args, ratings, split, seed, model, json: bool = False, **options) -> None:
        if options.get("protocol") == "chat":
            from chat.evaluation.command import chat_protocol_run

            self.stdout.write(chat_protocol_run(seed=seed, as_json=json, **options))
            return
        try:
            data = (
                evaluation.load_ratings_csv(ratings)
                if ratings
                else training_data.interactions_read()
            )
        except (OSError, ValueError, ApplicationError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from exc
        if options.get("protocol") == "coldstart":
            from recommender.embeddings import coldstart
            from recommender.embeddings import evaluation as cold

            rows = coldstart.coldstart_report(
                data=data, seed=seed, by="external_id" if ratings else "id"
            )
            if not rows or not rows[0]["cold_with_vectors"]:
                raise CommandError("no item embeddings: run `manage.py embed` first")
            if json:
                import json as jsonlib

                self.stdout.write(
                    jsonlib.dumps({"protocol": "coldstart", "seed": seed, "rows": rows})
                )
            else:
                self.stdout.write(cold.format_coldstart(rows))
            return
        names = model or [
            engine.DEFAULT_MODEL,
            *[b for b in BASELINES if b != engine.DEFAULT_MODEL],
        ]
        train, test = evaluation.split(data, method=split, seed=seed)
        if not json:
            self.stdout.write(
                f"{split} split{f', seed {seed}' if split == 'random' else ''}: "
                f"{evaluation.build_train_matrix(train).X.shape[0]} users, "
                f"{len(set(train.items.tolist()))} items, {len(train)} training and {len(test)} "
                f"test interactions"
            )
        factories = [(name, (lambda n: lambda: engine.get_model(n))(name)) for name in names]

        def progress(name: str, fraction: float) -> None:
            if not json and fraction >= 1.0:
                sys.stderr.write(f"  fitted {name}\n")

        rows = evaluation.evaluate_models(
            factories, train, test, default=engine.DEFAULT_MODEL, progress=progress
        )
        if json:
            import json as jsonlib

            self.stdout.write(jsonlib.dumps({"split": split, "seed": seed, "models": rows}))
        else:
            self.stdout.write(evaluation.format_rows(rows))

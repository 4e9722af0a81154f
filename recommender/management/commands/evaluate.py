import json as jsonlib
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog import selectors as catalog_selectors
from catalog.importing import grouplens
from catalog.importing.reading import ErrorLog
from recommender import engine, evaluation, selection, selectors, services, training_data
from recommender.coherence import ShortHistory
from recsite.exceptions import ApplicationError

# what the default is measured against when no --model is given (EASE at its best penalty
# on the test part is added to these)
BASELINES = ("popularity", "als", "rp3beta", "ease", "session_ease")
FEWSHOT_BASELINES = ("popularity", "ease")
SELECTED = "auto"


class Command(BaseCommand):
    help = (
        "Offline evaluation (docs: EVALUATION.md): Recall@20, NDCG@10, coverage, novelty, exposure "
        "Gini and fit time per model, side by side. Data: --ratings FILE (MovieLens's ratings.csv, "
        "or user, item[, value][, timestamp] rows as public datasets ship them: comma, tab, "
        "'::', ';' or '|' separated, header optional, any ids; the value and timestamp are "
        "optional) or the database's interactions. Without "
        "--model: the default (the per-site model selection the retrain runs, on the training "
        "part only) beside the baselines and EASE at its best penalty."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--ratings",
            help="ratings file: MovieLens's ratings.csv or user, item[, value][, timestamp] rows "
            "(default: the database)",
        )
        parser.add_argument("--split", choices=["random", "time"], default="random")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--model",
            action="append",
            choices=selection.TRAINABLE,
            help=f"model to evaluate (repeatable; {SELECTED!r}: the per-site selection); "
            "default: the selection plus baselines",
        )
        parser.add_argument(
            "--validation",
            choices=["split", "auto", "time", "random"],
            default="split",
            help="how the selection holds out its validation slice inside the training part: "
            "'split' (default) as the protocol's split does; 'auto' as a retrain does (by "
            "time where there are timestamps)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument(
            "--protocol",
            choices=["standard", "coldstart", "fewshot", "chat"],
            default="standard",
            help="coldstart: hold out 10%% of the items entirely and rank them by text embeddings "
            "(run `manage.py embed` first); fewshot: each tested user keeps only k training "
            "interactions (--k, default 5 and 10); chat: simulated users talk to the chat "
            "(chat.evaluation.protocol)",
        )
        parser.add_argument(
            "--k", type=int, action="append", help="fewshot: interactions kept per tested user"
        )
        parser.add_argument(
            "--movies",
            help="fewshot: the items' genres: movies.csv, ML-100K's u.item or ML-1M's "
            "movies.dat (default: the one beside --ratings)",
        )
        parser.add_argument(
            "--share",
            type=float,
            default=0.5,
            help="fewshot: the share of tested users who are new (cut to k and tested); the "
            "others keep their histories (default 0.5; 1: every tested user)",
        )
        parser.add_argument(
            "--coherence",
            type=float,
            help="fewshot: the genre-coherence strength for short histories, as serving applies "
            "it (default: RECOMMENDER_GENRE_COHERENCE; 0: off)",
        )
        parser.add_argument(
            "--short-history",
            type=int,
            help="fewshot: histories up to this length get the term (default: "
            "RECOMMENDER_SHORT_HISTORY)",
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
        protocol = options.get("protocol") or "standard"
        if protocol == "coldstart":
            if data.item_labels is not None:
                raise CommandError(
                    "the cold-start protocol finds the file's items in the catalog by their "
                    "integer external ids (MovieLens movieId); this file's item ids are not "
                    "integers"
                )
            return self._coldstart(data, seed, by="external_id" if ratings else "id", json=json)
        lines: list[str] = []
        if split == "time" and not data.has_timestamps:
            lines.append(
                "no timestamps (missing or all equal): the time split is impossible, "
                "using the random split"
            )
            split = "random"
        validation = options.get("validation") or "split"
        validation = split if validation == "split" else validation
        parts = evaluation.split(data, method=split, seed=seed)
        train, test = parts
        lines.append(
            f"{split} split{f', seed {seed}' if split == 'random' else ''}"
            f"{'' if data.has_timestamps else ' (the data has no timestamps)'}: "
            f"{evaluation.build_train_matrix(train).X.shape[0]} users, "
            f"{len(set(train.items.tolist()))} items, {len(train)} training and {len(test)} "
            f"test interactions; the selection validates on a {validation} slice"
        )
        if not json:
            self.stdout.write("\n".join(lines))
        selected = selection.SelectedModel(
            validation=validation, seed=seed, dense_max_items=services.dense_max_items()
        )

        def factory(name: str, part: evaluation.Interactions):
            if name == SELECTED:
                return lambda: selected
            if name == "ease":  # without its items x items matrix above the dense ceiling
                return lambda: evaluation.ease_for(part)(engine.get_model("ease").params["lam"])
            return lambda: engine.get_model(name)

        skipped: dict[str, str] = {}

        def rows_for(names, train_part, test_part, **kwargs) -> list[dict]:
            """The rows of the models that take this catalog (the others: ``skipped``)."""
            return evaluation.evaluate_models(
                [(name, factory(name, train_part)) for name in names],
                train_part,
                test_part,
                default=SELECTED,
                progress=progress,
                skipped=skipped,
                **kwargs,
            )

        def progress(name: str, fraction: float) -> None:
            if not json and fraction >= 1.0:
                sys.stderr.write(f"  fitted {name}\n")

        if protocol == "fewshot":
            genres = self._genres(ratings, options.get("movies"), data)
            served = selectors.short_history_policy()
            policy = ShortHistory(
                strength=served.strength
                if options.get("coherence") is None
                else options["coherence"],
                max_history=served.max_history
                if options.get("short_history") is None
                else options["short_history"],
            )
            result = {
                "protocol": "fewshot",
                "split": split,
                "seed": seed,
                "coherence": policy.strength,
                "short_history": policy.max_history,
                "tables": [],
            }
            if not json:
                self.stdout.write(
                    f"short histories (<= {policy.max_history}) as served: genre coherence "
                    f"{policy.strength:g}"
                )
            for k in options.get("k") or [5, 10]:
                share = options.get("share") or 0.5
                few = evaluation.fewshot_train(parts, k, seed=seed, share=share)
                names = model or [SELECTED, *FEWSHOT_BASELINES]
                rows = rows_for(names, few.train, few.test, genres=genres, short_history=policy)
                result["tables"].append({"k": k, "share": share, "models": rows})
                if not json:
                    self.stdout.write(
                        f"\nfew-shot: {len(set(few.test.users.tolist()))} new users "
                        f"({share:g} of the tested) keep k = {k} training interactions"
                    )
                    self.stdout.write(evaluation.format_rows(rows))
            result["skipped"] = skipped
            if json:
                self.stdout.write(jsonlib.dumps(result))
            elif skipped:
                self.stdout.write(_format_skipped(skipped))
            return

        names = model or [SELECTED, *BASELINES]
        rows = rows_for(names, train, test)
        result = {"split": split, "seed": seed, "validation": validation, "models": rows}
        lines = []
        if model is None:
            try:
                lam, best, tried = evaluation.ease_best_lambda(train, test)
            except engine.CatalogTooLargeError as exc:
                skipped["ease (best lam)"] = str(exc)
            else:
                rows.append({"name": f"ease (best lam {lam:g})", "default": False, **best})
                result["ease_best"] = {"lam": lam, "ndcg@10 by lam": tried, **best}
                own = next(r for r in rows if r["name"] == SELECTED)
                ratio = own["ndcg@10"] / best["ndcg@10"] if best["ndcg@10"] else float("nan")
                result["ratio_ndcg"] = ratio
                lines.append(f"default / EASE at its best lam ({lam:g}), NDCG@10: {ratio:.3f}x")
        result["skipped"] = skipped
        if selected.selection is not None:
            result["selection"] = selected.selection.report()
        if json:
            self.stdout.write(jsonlib.dumps(result))
            return
        self.stdout.write(evaluation.format_rows(rows))
        for line in lines:
            self.stdout.write(line)
        if skipped:
            self.stdout.write(_format_skipped(skipped))
        if selected.selection is not None:
            self.stdout.write(_format_selection(selected.selection))

    def _genres(
        self, ratings: str | None, movies: str | None, data: evaluation.Interactions
    ) -> dict[int, tuple[str, ...]]:
        if not (movies or ratings):
            return {
                item: tuple(genres)
                for item, genres in catalog_selectors.item_list(include_hidden=True).values_list(
                    "id", "genres"
                )
            }
        path = Path(movies) if movies else _movies_beside(Path(ratings))  # type: ignore[arg-type]
        if not path.exists():
            raise CommandError(
                f"{path}: no movies file with genres (movies.csv, u.item or movies.dat; "
                "give --movies)"
            )
        try:
            by_text = _read_genres(path)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        genres = evaluation.genres_by_item(by_text, data)
        if not genres:
            raise CommandError(f"{path}: none of its ids is an item of the ratings file")
        return genres

    def _coldstart(self, data, seed: int, *, by: str, json: bool) -> None:
        from recommender.embeddings import coldstart
        from recommender.embeddings import evaluation as cold

        rows = coldstart.coldstart_report(data=data, seed=seed, by=by)
        if not rows or not rows[0]["cold_with_vectors"]:
            raise CommandError("no item embeddings: run `manage.py embed` first")
        if json:
            self.stdout.write(jsonlib.dumps({"protocol": "coldstart", "seed": seed, "rows": rows}))
        else:
            self.stdout.write(cold.format_coldstart(rows))


def _format_skipped(skipped: dict[str, str]) -> str:
    return "\n".join(f"not run: {name}: {why}" for name, why in skipped.items())


def _format_selection(sel: selection.Selection, top: int = 12) -> str:
    out = [
        f"\nmodel selection on the training part ({sel.validation} validation slice, "
        f"{sel.n_validation_users} users, {sel.seconds:.1f} s): chose {sel.label}",
        f"  {'candidate':<44}{'ndcg@10':>9}{'recall@20':>10}{'s':>7}",
    ]
    for row in sel.table()[:top]:
        mark = "*" if row["chosen"] else " "
        out.append(
            f"{mark} {row['label']:<44}{row['ndcg@10']:>9.4f}{row['recall@20']:>10.4f}"
            f"{row['seconds']:>7.2f}"
        )
    if len(sel.trials) > top:
        out.append(f"  ... {len(sel.trials) - top} more (--json for all)")
    return "\n".join(out)


def _movies_beside(ratings: Path) -> Path:
    """The genres file of the dataset ``ratings`` belongs to: the movies file of its GroupLens
    layout (ML-100K's u.item, ML-1M's and ML-10M's movies.dat), else movies.csv."""
    layout = grouplens.layout_of(ratings.parent)
    return ratings.parent / ((layout.file("movies") if layout else None) or "movies.csv")


def _read_genres(path: Path) -> dict[str, tuple[str, ...]]:
    """``item id -> genres`` from a movies.csv, or from a GroupLens movies file read as the
    catalog import reads it (``catalog.importing.grouplens``)."""
    layout = grouplens.layout_for_movies(path)
    if layout is None:
        return evaluation.load_genres(path)
    errors = ErrorLog()
    genres = {
        row["movieId"].strip(): evaluation.split_genres(row["genres"])
        for _, row in layout.rows(path.parent, "movies", errors)
    }
    if errors.total:
        raise ValueError(f"{path.parent}: {errors.errors[0]} ({errors.total} bad rows in all)")
    return genres

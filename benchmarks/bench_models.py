"""The default (per-site model selection) against EASE at its best penalty, on several datasets
of different shape and several splits: the figures of docs/MODELS.md.

For each dataset and split it prints EASE's best ``lam`` on the test part (an oracle: no model
tuned on the training part can pick better), today's fixed ``session_ease``, and the default as
``manage.py evaluate`` runs it (the selection on the training part only, then the refit), with
the ratio of NDCG@10 to best-lambda EASE and the mean ratio over every row.

Datasets: ml-latest-small (``--movielens DIR``, default ../shared/data/ml-latest-small) and the
synthetic shapes of ``benchmarks/synthetic.py`` (generated with their seed under ``--data``).

Usage: .venv/bin/python benchmarks/bench_models.py [--dataset NAME ...] [--seeds 0 1 2]
       [--time] [--json out.json]   (RECSITE_ENGINE_THREADS=1 to leave a core to others)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from synthetic import SHAPES, write  # noqa: E402

from recommender import engine, evaluation, selection  # noqa: E402


def dataset_path(name: str, args: argparse.Namespace) -> Path:
    if name == "ml-latest-small":
        return args.movielens / "ratings.csv"
    path = args.data / name / "ratings.csv"
    if not path.exists():
        write(SHAPES[name], args.data / name, seed=0)
    return path


def run(name: str, path: Path, method: str, seed: int) -> dict:
    data = evaluation.load_ratings_csv(path)
    if method == "time" and not data.has_timestamps:
        return {}
    train, test = evaluation.split(data, method=method, seed=seed)
    lam, ease, tried = evaluation.ease_best_lambda(train, test)
    fixed = evaluation.evaluate(engine.get_model("session_ease"), train, test)
    model = selection.SelectedModel(validation=method, seed=seed)
    t = time.perf_counter()
    own = evaluation.evaluate(model, train, test)
    assert model.selection is not None
    return {
        "dataset": name,
        "split": method if method == "time" else f"random {seed}",
        "ease_lam": lam,
        "ease": [ease["recall@20"], ease["ndcg@10"]],
        "session_ease": [fixed["recall@20"], fixed["ndcg@10"]],
        "default": [own["recall@20"], own["ndcg@10"]],
        "ratio": own["ndcg@10"] / ease["ndcg@10"],
        "chosen": model.selection.label,
        "selection_s": model.selection.seconds,
        "fit_s": time.perf_counter() - t,
        "ease_by_lam": tried,
    }


def fmt(r: dict) -> str:
    def pair(v: list[float]) -> str:
        return f"{v[0]:.4f}/{v[1]:.4f}"

    return (
        f"{r['dataset']:<16}{r['split']:<10}{r['ease_lam']:>7g} {pair(r['ease']):>14}"
        f" {pair(r['session_ease']):>14} {pair(r['default']):>14} {r['ratio']:>6.3f}x"
        f"  {r['selection_s']:>5.1f}s  {r['chosen']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", choices=["ml-latest-small", *sorted(SHAPES)])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--time", action="store_true", help="also the time split")
    parser.add_argument(
        "--movielens", type=Path, default=ROOT.parent / "shared" / "data" / "ml-latest-small"
    )
    parser.add_argument("--data", type=Path, default=ROOT / "var" / "synthetic")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(
        f"{'dataset':<16}{'split':<10}{'lam':>7} {'EASE best':>14} {'session_ease':>14}"
        f" {'default':>14} {'ratio':>7}  {'select':>6}  chosen   (Recall@20/NDCG@10)",
        flush=True,
    )
    rows = []
    for name in args.dataset or ["ml-latest-small", *sorted(SHAPES)]:
        path = dataset_path(name, args)
        splits = [("random", s) for s in args.seeds] + ([("time", 0)] if args.time else [])
        for method, seed in splits:
            r = run(name, path, method, seed)
            if r:
                rows.append(r)
                print(fmt(r), flush=True)
    if rows:
        mean = sum(r["ratio"] for r in rows) / len(rows)
        worst = min(rows, key=lambda r: r["ratio"])
        print(
            f"mean ratio {mean:.3f}x over {len(rows)} rows; worst {worst['ratio']:.3f}x "
            f"({worst['dataset']}, {worst['split']})"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

"""Simulated users (after the user simulators of RecAgent / iAgent, kept simple and seeded).

Each is a copy of a real user of the database with part of their history held out: the rest is
written as the simulated user's own history (``sim_<seed>_<n>``), the held-out items they rated
highly are their *favourites*, the items a good answer should find. The caller runs everything
inside a transaction it rolls back, so nothing of them stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection

from catalog.models import Interaction

HOLD_OUT = 0.2
MIN_HISTORY = 20
MIN_FAVOURITES = 2
FAVOURITE_RATING = 4.0
SIM_PREFIX = "sim_"


@dataclass
class SimUser:
    user: object  # the Django user holding the training history
    source_user_id: int
    train: list[int]  # item ids, most recent first
    liked: list[int]  # training items rated >= FAVOURITE_RATING (or liked)
    favourites: list[int]  # held-out items rated >= FAVOURITE_RATING (or liked)
    rng: np.random.Generator = field(repr=False, default_factory=np.random.default_rng)


def _candidate_users(min_history: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.user_id FROM catalog_interaction i JOIN auth_user u ON u.id = i.user_id"
            " WHERE i.kind IN ('rating', 'like') AND u.username NOT LIKE %s"
            " GROUP BY i.user_id HAVING count(DISTINCT i.item_id) >= %s ORDER BY i.user_id",
            [SIM_PREFIX + "%", min_history],
        )
        return [row[0] for row in cursor.fetchall()]


def sim_users_create(*, n: int, seed: int) -> list[SimUser]:
    """``n`` simulated users copied from real ones (chosen with ``seed``), each with a held-out
    share of their positives; users left with too few favourites are skipped for the next."""
    rng = np.random.default_rng(seed)
    pool = _candidate_users(MIN_HISTORY)
    order = rng.permutation(len(pool)).tolist()
    User = get_user_model()
    out: list[SimUser] = []
    for pos in order:
        if len(out) >= n:
            break
        source = pool[pos]
        rows = list(
            Interaction.objects.filter(user_id=source, kind__in=["rating", "like"])
            .order_by("-timestamp", "-id")
            .values_list("item_id", "kind", "value", "timestamp")
        )
        rows = list({r[0]: r for r in reversed(rows)}.values())[::-1]  # one row per item
        user_rng = np.random.default_rng([seed, source])
        n_test = max(1, round(HOLD_OUT * len(rows)))
        test_pos = set(user_rng.choice(len(rows), size=n_test, replace=False).tolist())

        def positive(row: tuple) -> bool:
            return row[1] == "like" or (row[2] is not None and row[2] >= FAVOURITE_RATING)

        favourites = [r[0] for k, r in enumerate(rows) if k in test_pos and positive(r)]
        train_rows = [r for k, r in enumerate(rows) if k not in test_pos]
        liked = [r[0] for r in train_rows if positive(r)]
        if len(favourites) < MIN_FAVOURITES or len(liked) < 3:
            continue
        user = User.objects.create(username=f"{SIM_PREFIX}{seed}_{len(out)}")
        user.set_unusable_password()
        user.save(update_fields=["password"])
        Interaction.objects.bulk_create(
            Interaction(
                user=user,
                item_id=item_id,
                kind=kind,
                value=value,
                timestamp=timestamp,
                source=Interaction.Source.IMPORT,
            )
            for item_id, kind, value, timestamp in train_rows
        )
        out.append(
            SimUser(
                user=user,
                source_user_id=source,
                train=[r[0] for r in train_rows],
                liked=liked,
                favourites=favourites,
                rng=user_rng,
            )
        )
    return out

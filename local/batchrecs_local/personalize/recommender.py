"""A small but real recommender behind the emulator's solution versions.

The interactions dataset (Personalize's USER_ID, ITEM_ID, TIMESTAMP schema) is generated
deterministically with structure a recommender can learn: items belong to genres (taste clusters),
item popularity follows a Zipf law, and each user mostly interacts with one or two favourite genres.
The model is item-item cosine similarity over the binary user-item matrix:

- user-personalization: a user's score for an item is the sum of its similarity to the user's items;
  seen items are excluded; unknown (cold) users get the most popular items;
- popularity: items by interaction count, the same for everyone;
- related-items: the most similar items to an item;
- personalized-ranking: the given items reordered by the user's scores;
- item-affinity / item-attribute-affinity: the users with the highest score for the item (or the mean
  score over the items matching the attribute expression).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import orjson

from batchrecs_local import cache

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "SciFi", "Documentary", "Animation")
_TERM = re.compile(r'ITEMS\.([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Dataset:
    """Interactions plus item metadata; ids are strings as Personalize has them."""

    user_ids: list[str]
    item_ids: list[str]
    item_genres: list[str]
    interactions: list[tuple[str, str, int]]  # (USER_ID, ITEM_ID, TIMESTAMP)

    @classmethod
    def generate(cls, users: int = 600, items: int = 300, seed: int = 7) -> Dataset:
        rng = np.random.default_rng(seed)
        item_ids = [str(100 + i) for i in range(items)]
        item_genre = rng.integers(0, len(GENRES), size=items)
        second_genre = rng.integers(0, len(GENRES), size=items)
        has_second = (rng.random(items) < 0.4) & (second_genre != item_genre)
        popularity = 1.0 / np.arange(1, items + 1) ** 0.8
        popularity = popularity[rng.permutation(items)]
        interactions: list[tuple[str, str, int]] = []
        clock = 1_700_000_000
        for user in range(users):
            favourites = rng.choice(len(GENRES), size=int(rng.integers(1, 3)), replace=False)
            weight = popularity * np.where(np.isin(item_genre, favourites), 30.0, 1.0)
            count = int(rng.integers(8, 40))
            chosen = rng.choice(items, size=count, replace=False, p=weight / weight.sum())
            for item in chosen:
                clock += int(rng.integers(1, 600))
                interactions.append((str(1 + user), item_ids[item], clock))
        return cls(
            user_ids=[str(1 + u) for u in range(users)],
            item_ids=item_ids,
            item_genres=[
                GENRES[g] + (f"|{GENRES[s]}" if second else "")
                for g, s, second in zip(item_genre, second_genre, has_second, strict=True)
            ],
            interactions=interactions,
        )

    @classmethod
    def generated(cls, users: int = 600, items: int = 300, seed: int = 7) -> Dataset:
        """``generate``'s dataset, kept in the local cache by the hash of this module, numpy's version
        and the arguments: generating it took 0.08 s of every local start, reading it back takes 7 ms."""
        made_by = [Path(__file__).read_bytes(), np.__version__.encode(), f"{users},{items},{seed}".encode()]
        name = f"dataset-{hashlib.sha256(b'|'.join(made_by)).hexdigest()[:32]}.json"
        kept = cache.read(name)
        if kept:
            try:
                fields = orjson.loads(kept)
                interactions = [(user, item, at) for user, item, at in fields.pop("interactions")]
                return cls(**fields, interactions=interactions)
            except (ValueError, KeyError, TypeError, AttributeError):  # cut short or not ours: made again
                pass
        dataset = cls.generate(users, items, seed)
        cache.keep(name, orjson.dumps(asdict(dataset)))
        return dataset

    def with_interactions(self, rows: list[tuple[str, str, int]], replace: bool) -> Dataset:
        """The dataset after an import: ``rows`` instead of the interactions (FULL) or added to them
        (INCREMENTAL). New users and items join the dataset (a new item's genre is unknown)."""
        interactions = list(rows) if replace else [*self.interactions, *rows]
        users = list(dict.fromkeys([*self.user_ids, *(user for user, _, _ in rows)]))
        known = set(self.item_ids)
        new_items = list(dict.fromkeys(item for _, item, _ in rows if item not in known))
        return Dataset(
            user_ids=users,
            item_ids=[*self.item_ids, *new_items],
            item_genres=[*self.item_genres, *("Unknown" for _ in new_items)],
            interactions=interactions,
        )

    def new_taste(self, user: str) -> tuple[str, list[str]]:
        """For showing a retrain: the genre ``user`` cares least for, and half of its items the user has
        not seen (interactions with them make the user love the genre)."""
        genres = dict(zip(self.item_ids, self.item_genres, strict=True))
        seen = {item for who, item, _ in self.interactions if who == user}
        liked = Counter(genre for item in seen for genre in genres[item].split("|"))
        genre = min(GENRES, key=lambda g: (liked[g], g))
        unseen = [item for item, g in genres.items() if genre in g.split("|") and item not in seen]
        return genre, unseen[: len(unseen) // 2]

    def genre_share(self, items: list[str], genre: str) -> float:
        genres = dict(zip(self.item_ids, self.item_genres, strict=True))
        return sum(genre in genres.get(item, "").split("|") for item in items) / max(1, len(items))

    def interactions_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["USER_ID", "ITEM_ID", "TIMESTAMP"])
        writer.writerows(self.interactions)
        return out.getvalue()

    def items_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["ITEM_ID", "GENRES"])
        writer.writerows(zip(self.item_ids, self.item_genres, strict=True))
        return out.getvalue()


class Recommender:
    """Item-item cosine model trained on a ``Dataset``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._user_index = {user: i for i, user in enumerate(dataset.user_ids)}
        self._item_index = {item: i for i, item in enumerate(dataset.item_ids)}
        matrix = np.zeros((len(dataset.user_ids), len(dataset.item_ids)), dtype=np.float32)
        for user, item, _ in dataset.interactions:
            matrix[self._user_index[user], self._item_index[item]] = 1.0
        self._matrix = matrix
        norms = np.linalg.norm(matrix, axis=0)
        normalised = matrix / np.where(norms == 0, 1, norms)
        similarity = normalised.T @ normalised
        np.fill_diagonal(similarity, 0.0)
        self._similarity = similarity
        counts = matrix.sum(axis=0)
        self._popularity = counts / counts.sum()
        self._popular_order = np.argsort(-counts, kind="stable")

    def knows_item(self, item: str) -> bool:
        return item in self._item_index

    @cached_property
    def _user_scores(self) -> np.ndarray:
        """Every known user's score for every item (users x items), seen items included."""
        return self._matrix @ self._similarity

    def recommend(self, user: str, count: int, popularity: float = 0.0) -> tuple[list[str], list[float]]:
        """User-Personalization: unseen items by score, or popular items for a cold user. ``popularity``
        (a job's rankingInfluence POPULARITY, 0-1) blends the items' popularity into the order."""
        index = self._user_index.get(user)
        if index is None:
            order = self._popular_order[:count]
            return self._ids(order), _rounded(self._popularity[order])
        scores = self._user_scores[index].copy()
        if popularity:
            top = float(scores.max()) or 1.0
            scores = (1 - popularity) * scores / top + popularity * self._popularity / self._popularity.max()
        scores[self._matrix[index] > 0] = -np.inf
        order = np.argsort(-scores, kind="stable")[:count]
        probabilities = _softmax(self._user_scores[index], self._matrix[index] == 0)
        return self._ids(order), _rounded(probabilities[order])

    def popular(self, count: int) -> list[str]:
        return self._ids(self._popular_order[:count])

    def related(self, item: str, count: int) -> list[str]:
        order = np.argsort(-self._similarity[self._item_index[item]], kind="stable")
        return self._ids([i for i in order if i != self._item_index[item]][:count])

    def rank(self, user: str, items: list[str]) -> tuple[list[str], list[float]]:
        index = self._user_index.get(user)
        known = [item for item in items if item in self._item_index]
        unknown = [item for item in items if item not in self._item_index]
        columns = [self._item_index[item] for item in known]
        raw = self._user_scores[index, columns] if index is not None else self._popularity[columns] * 100
        weights = np.exp(raw - raw.max()) if len(raw) else raw
        order = np.argsort(-weights, kind="stable")
        ranked = [known[i] for i in order] + unknown
        total = float(weights.sum()) + len(unknown) * 1e-6
        scores = [float(weights[i]) / total for i in order] + [1e-6 / total] * len(unknown)
        return ranked, _rounded(np.array(scores))

    def users_for_item(self, item: str, count: int) -> list[str]:
        column = self._user_scores[:, self._item_index[item]]
        return self._user_ids(np.argsort(-column, kind="stable")[:count])

    def users_for_attributes(self, expression: str, count: int) -> list[str] | None:
        """Users most likely to interact with items having every genre of the ``ITEMS.GENRES = "x"`` terms.

        None when the expression names an attribute the local items dataset lacks (only GENRES).
        """
        terms = _TERM.findall(expression)
        if not terms or any(field.upper() != "GENRES" for field, _ in terms):
            return None
        wanted = {value.lower() for _, value in terms}
        columns = [
            i for i, genres in enumerate(self.dataset.item_genres) if wanted <= set(genres.lower().split("|"))
        ]
        if not columns:
            return []
        scores = self._user_scores[:, columns].mean(axis=1)
        return self._user_ids(np.argsort(-scores, kind="stable")[:count])

    def _ids(self, order: np.ndarray | list[int]) -> list[str]:
        return [self.dataset.item_ids[int(i)] for i in order]

    def _user_ids(self, order: np.ndarray) -> list[str]:
        return [self.dataset.user_ids[int(i)] for i in order]


def _softmax(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = np.where(mask, np.exp((scores - scores.max()) / max(float(scores.std()), 1e-6)), 0.0)
    return weights / weights.sum()


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(value), 7) for value in values]

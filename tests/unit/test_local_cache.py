"""What a local start keeps for the next one: the emulator's dataset comes back as it was generated."""

from __future__ import annotations

from pathlib import Path

import pytest
from batchrecs_local.personalize.recommender import Dataset


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BATCHRECS_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_the_dataset_is_generated_once_and_read_back_the_same(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated = Dataset.generated(users=40, items=60, seed=3)
    assert generated == Dataset.generate(users=40, items=60, seed=3)
    assert len(list(cache_dir.glob("dataset-*.json"))) == 1

    def not_again(*_: object) -> Dataset:
        raise AssertionError("generated again although it was kept")

    monkeypatch.setattr(Dataset, "generate", classmethod(not_again))
    assert Dataset.generated(users=40, items=60, seed=3) == generated  # interactions are tuples again


def test_other_arguments_or_a_file_cut_short_generate_it_again(cache_dir: Path) -> None:
    first = Dataset.generated(users=40, items=60, seed=3)
    assert Dataset.generated(users=40, items=60, seed=4) != first
    for kept in cache_dir.glob("dataset-*.json"):
        kept.write_bytes(kept.read_bytes()[:100])
    assert Dataset.generated(users=40, items=60, seed=3) == first

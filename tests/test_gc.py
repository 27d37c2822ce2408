"""The server's collector tuning: thresholds from settings, refused when malformed."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from server.main import tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_thresholds_are_applied_and_start_up_objects_are_frozen(restore_gc: None) -> None:
    tune_gc("40000,30,500")
    assert gc.get_threshold() == (40000, 30, 500)
    assert gc.get_freeze_count() > 0


def test_empty_keeps_pythons_own_settings(restore_gc: None) -> None:
    before = gc.get_threshold()
    tune_gc("")
    assert gc.get_threshold() == before


def test_malformed_thresholds_are_refused_with_the_setting_named(restore_gc: None) -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError, match="PARLEY_GC_THRESHOLDS must be three integers"):
        tune_gc("lots")
    assert gc.get_threshold() == before

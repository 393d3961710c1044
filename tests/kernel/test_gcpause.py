"""``gc_paused`` turns automatic collection off for its block and puts back exactly the state it found."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tenantpulse.kernel.gcpause import gc_paused


@pytest.fixture(autouse=True)
def collection_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_paused_inside_resumed_after_even_on_error() -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_nested_and_already_off_states_are_kept() -> None:
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not resume what the outer one paused
    assert gc.isenabled()
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()  # a caller that turned collection off keeps it off

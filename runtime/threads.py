"""Blocking work in a worker thread that a cancellation does not abandon half-way.

``asyncio.to_thread`` returns to a cancelled caller at once while the thread keeps running;
a service that closes its stores right after its tasks end would then pull them from under
that thread (a batch half written, "cannot operate on a closed database"). ``to_thread_settled``
waits for the thread to finish before the cancellation propagates. Use it for short units of
work (one batch, one drain pass), not for waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def to_thread_settled(
    func: Callable[..., T],
    /,
    *args: Any,
    on_cancel: Callable[[], None] | None = None,
    **kwargs: Any,
) -> T:
    """``await asyncio.to_thread(func, *args, **kwargs)``, but on cancellation let the call
    finish in its thread first (its result or error is discarded), then re-raise the
    cancellation.

    ``on_cancel`` runs as soon as the cancellation arrives, before the wait: long work uses it
    to ask the thread to stop early (set an event the work checks). A second cancellation
    while waiting does not abandon the thread either.
    """
    work = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        if on_cancel is not None:
            on_cancel()
        while not work.done():
            try:
                await asyncio.shield(work)
            except asyncio.CancelledError:
                continue  # cancelled again: the thread still owns the stores until it ends
            except Exception:
                break
        raise

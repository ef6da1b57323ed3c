"""Blocking work in a worker thread that a cancellation does not abandon half-way.

``asyncio.to_thread`` returns to a cancelled caller at once while the thread keeps running;
a service that closes its stores right after its tasks end would then pull them from under
that thread (a batch half written, "cannot operate on a closed database"). ``to_thread_settled``
waits for the thread to finish before the cancellation propagates. Use it for short units of
work (one batch, one drain pass), not for waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def to_thread_settled(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``await asyncio.to_thread(func, *args, **kwargs)``, but on cancellation let the call
    finish in its thread first (its result or error is discarded), then re-raise the
    cancellation."""
    work = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await work
        raise

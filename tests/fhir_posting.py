"""Running the region's FHIR poster (region/fhir_post.py) in a test until its queue is idle."""

from __future__ import annotations

import asyncio

import pytest

from region.fhir_post import FhirPoster


async def post_until_idle(poster: FhirPoster, timeout_s: float = 60.0) -> None:
    """Run ``poster`` until it has sent (or set aside) everything queued, then stop it; fails
    after ``timeout_s``."""
    poster.idle.clear()  # set by an earlier run
    task = asyncio.create_task(poster.run())
    try:
        async with asyncio.timeout(timeout_s):
            await poster.idle.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

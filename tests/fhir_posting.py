"""Running the region's FHIR poster in a test: until it has posted everything queued."""

from __future__ import annotations

import asyncio

import pytest

from region.fhir_post import FhirPoster


async def post_until_idle(poster: FhirPoster) -> None:
    """Run ``poster`` until it is idle (its queue posted), then cancel it."""
    poster.idle.clear()  # set by an earlier run
    task = asyncio.create_task(poster.run())
    try:
        async with asyncio.timeout(60):
            await poster.idle.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

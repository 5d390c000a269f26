"""A Kopf handler that uses asyncio directly, as most Kopf operators do."""

import asyncio

import trikopf as kopf


@kopf.on.create("kopfexamples")
async def create_fn(name, **_):
    await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    return {"slept": True, "loop": type(loop).__name__ != ""}

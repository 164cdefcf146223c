"""ASGI entry point for servers: ``graphdir.asgi:create_app`` (factory) reads settings from the environment."""

from __future__ import annotations

import gc

from graphdir.settings import load_settings
from graphdir.web.app import FrontDoor, build_app

#: Young-generation threshold of the cyclic garbage collector in server processes (CPython's default: 700).
GC_THRESHOLD = (50_000, 20, 100)


def tune_gc() -> None:
    """Freeze what start-up allocated (the collector never walks it again) and collect the young
    generation every 50,000 container allocations instead of every 700.

    Runs once start-up is done (the app's lifespan calls it after the store opened and the key ring,
    tenant and caches were loaded), so that what start-up allocated is frozen too.

    A request allocates a few dozen containers and frees almost all of them by reference counting;
    with the default thresholds the collector ran every ~20 requests and, in its older generations,
    walked the writer's object cache over and over: ~5 % of a removal's CPU and p99 spikes
    (bench/README.md). Requests create few reference cycles, so the garbage this defers is small.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def create_app() -> FrontDoor:
    return build_app(load_settings(), after_start=tune_gc)

"""``graphdir serve`` itself, with the ASGI target swapped for :func:`bench.app.create_app`.

The bench must measure the real command (its settings, its granian arguments, its worker count);
the only change is the factory, which wraps graphdir's app and adds the bench's trivial route.
Usage: ``python -m bench.serve --port N --db URL [--workers N]`` (the arguments of ``graphdir serve``).
"""

from __future__ import annotations

import sys

import granian

from graphdir.cli import main

_Granian = granian.Granian


class _BenchGranian(_Granian):  # type: ignore[misc, valid-type]
    def __init__(self, target: str, *args: object, **kwargs: object) -> None:
        if target == "graphdir.asgi:create_app":
            target = "bench.app:create_app"
        super().__init__(target, *args, **kwargs)


if __name__ == "__main__":
    granian.Granian = _BenchGranian  # cli.serve does `from granian import Granian` at call time
    sys.exit(main(["serve", *sys.argv[1:]]))

"""The twistd entry point (``twistd -n mailstack --config FILE``)."""

from __future__ import annotations

from twisted.python import usage

from mailstack import config as configs


class Options(usage.Options):
    optParameters = [["config", "c", "mailstack.toml", "configuration file"]]


def makeService(options):
    from mailstack import memory
    memory.limit_heaps()        # before any thread exists (mailstack/memory.py)

    from twisted.internet import reactor

    from mailstack import service

    try:
        config = configs.load(options["config"])
    except configs.ConfigError as e:
        raise SystemExit(f"mailstack: error: {e}")
    root, _built = service.build(config, reactor)
    memory.ReturnFreeMemory(reactor).setServiceParent(root)
    return root

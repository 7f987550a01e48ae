"""The twistd entry point (``twistd -n mailstack --config FILE``)."""

from __future__ import annotations

from twisted.python import usage

from mailstack import config as configs


class Options(usage.Options):
    optParameters = [["config", "c", "mailstack.toml", "configuration file"]]


def makeService(options):
    from twisted.internet import reactor

    from mailstack import service

    try:
        config = configs.load(options["config"])
    except configs.ConfigError as e:
        raise SystemExit(f"mailstack: error: {e}")
    root, _built = service.build(config, reactor)
    return root

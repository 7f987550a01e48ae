"""One module per front end.  Each exposes ``build_factory(parts, listener)`` and
``register_avatars(parts)``; ``service.py`` calls them and nothing else."""

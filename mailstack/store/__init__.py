"""Storage: the only package that talks to the database (SQLAlchemy Core).

Functions here are synchronous and take a ``Connection`` inside a transaction; callers on
the reactor reach them only through ``Database.run`` (a thread pool), so nothing blocks the
reactor and each call is one unit of work that commits or rolls back as a whole.
They return plain values (tuples, dataclasses), never rows bound to a connection.
"""

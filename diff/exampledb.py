"""The Hypothesis example database a campaign may share with other campaigns.

A database spec is a string: a directory path (Hypothesis'
DirectoryBasedExampleDatabase; shared by every process that sees the same
file system) or `redis://HOST:PORT[/DB]` (hypothesis.extra.redis'
RedisExampleDatabase; shared by every machine that reaches the server).

Hypothesis stores each failing example under a *key*.  By default the key of
a stateful test is a digest of the machine class (its source, or its name
when the class has no source, as ours built by Family.machine_for do: their
name carries the seed), so it would differ per seed.  `campaign_key()` is
ours instead: it names (family, variant, mode) and nothing else, so a failure
found with any seed, on any machine, is replayed first by every later
campaign of the same (family, variant, mode).  run_campaign() sets it on the
test Hypothesis runs (tested: tests/test_distributed.py, two seeds, directory
and Redis).
"""

import os
import urllib.parse

KEY_FORMAT = b"mmuspec-campaign-v1"
REDIS_CONNECT_SECONDS = 5.0


class DatabaseError(RuntimeError):
    """A database spec that is malformed or unreachable; the message is one line."""


def campaign_key(family, variant, mode):
    """The database key of a campaign: (family, variant or the plain impl, mode), no seed.

    Plain bytes, readable in Redis (`hypothesis-example:mmuspec-campaign-v1:rmap:...`).
    A variant's key differs from the plain impl's, which matters: Hypothesis
    deletes a stored example that no longer fails, so sharing one key between
    a variant and the impl would let each erase the other's failures.
    """
    return b":".join([KEY_FORMAT, family.encode(), (variant or "impl").encode(), mode.encode()])


def is_redis(spec):
    return spec.lower().startswith("redis://")


def _redis_parts(spec):
    try:
        u = urllib.parse.urlsplit(spec)
        port = u.port or 6379
    except ValueError as e:
        raise DatabaseError(f"bad --database URL {spec!r}: {e}") from None
    if u.scheme.lower() != "redis" or not u.hostname:
        raise DatabaseError(f"bad --database URL {spec!r}: expected redis://HOST:PORT")
    path = u.path.strip("/")
    if path and not path.isdigit():
        raise DatabaseError(f"bad --database URL {spec!r}: the path must be a database number")
    return u.hostname, port, int(path or 0)


def normalize(spec):
    """Validate a spec without connecting; returns it with a directory made absolute.

    An absolute directory is what a worker in another process (another
    working directory) needs.  Raises DatabaseError with a one-line reason.
    """
    if spec is None:
        return None
    if not isinstance(spec, str) or not spec.strip():
        raise DatabaseError("--database needs a directory or redis://HOST:PORT")
    if is_redis(spec):
        _redis_parts(spec)
        return spec
    if "://" in spec:
        raise DatabaseError(f"bad --database {spec!r}: a directory, or redis://HOST:PORT")
    path = os.path.abspath(os.path.expanduser(spec))
    if os.path.exists(path) and not os.path.isdir(path):
        raise DatabaseError(f"--database {spec!r} exists and is not a directory")
    return path


def check(spec):
    """Normalize `spec` and make sure it can be used now: create the directory,
    or connect to Redis and PING it.  Returns the normalized spec."""
    spec = normalize(spec)
    if spec is None:
        return None
    if is_redis(spec):
        _connect(spec)
    else:
        try:
            os.makedirs(spec, exist_ok=True)
        except OSError as e:
            raise DatabaseError(f"cannot create --database directory {spec}: {e.strerror}") from None
    return spec


def _connect(spec):
    try:
        import redis
    except ImportError:
        raise DatabaseError("a redis:// database needs the redis package (pip install redis)") from None
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    host, port, db = _redis_parts(spec)
    try:  # one try, so an unreachable server is reported at once
        redis.Redis(host=host, port=port, db=db, socket_connect_timeout=REDIS_CONNECT_SECONDS,
                    retry=Retry(NoBackoff(), 0)).ping()
    except redis.exceptions.RedisError as e:
        raise DatabaseError(f"cannot reach Redis at {host}:{port}: {str(e).splitlines()[0]}") from None
    # The campaign's client keeps redis-py's default retries for passing hiccups.
    return redis.Redis(host=host, port=port, db=db, socket_connect_timeout=REDIS_CONNECT_SECONDS,
                       socket_timeout=30.0)


_OPEN = {}


def open_database(spec):
    """The Hypothesis ExampleDatabase for `spec` (None -> None), one per spec per process."""
    if spec is None:
        return None
    spec = normalize(spec)
    if spec not in _OPEN:
        if is_redis(spec):
            from hypothesis.extra.redis import RedisExampleDatabase

            _OPEN[spec] = RedisExampleDatabase(_connect(spec))
        else:
            from hypothesis.database import DirectoryBasedExampleDatabase

            _OPEN[spec] = DirectoryBasedExampleDatabase(spec)
    return _OPEN[spec]


def count_stored(db, key, spec=None, limit=None):
    """How many examples `db` holds under `key` (stopping at `limit`); a failing
    database raises DatabaseError."""
    n = 0
    try:
        for _ in db.fetch(key):
            n += 1
            if limit and n >= limit:
                break
    except errors() as e:
        raise DatabaseError(f"example database {spec}: {str(e).splitlines()[0]}") from None
    return n


def errors():
    """Exception types that mean the database itself failed (not the code under test)."""
    try:
        import redis
    except ImportError:
        return ()
    return (redis.exceptions.RedisError,)

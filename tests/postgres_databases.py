"""Throwaway databases on the real PostgreSQL server, for the tests that need one.

The server is BATCHGATE_TEST_POSTGRES_URL (an admin URL; default: the local server, user
postgres). Each test session creates uniquely named databases and drops them at the end.
"""

import hashlib
import os
import re
import secrets
import socket
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get(
    "BATCHGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
LEFTOVER = re.compile(rf"batchgate_test_{HOST}_(\d+)_[0-9a-f]+_\d+")


class Databases:
    """Creates databases on the server for this session and drops them all at the end."""

    def __init__(self) -> None:
        self.prefix = f"batchgate_test_{HOST}_{os.getpid()}_{secrets.token_hex(3)}"
        self.created: list[str] = []
        try:
            self.admin = psycopg.connect(ADMIN_URL, autocommit=True)
        except psycopg.OperationalError as error:
            raise RuntimeError(
                f"PostgreSQL is not reachable at {ADMIN_URL} ({error}). Start it with"
                " `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
                " or point BATCHGATE_TEST_POSTGRES_URL at a server."
            ) from error

    def drop_leftovers(self) -> None:
        """Drops the databases of this machine's test sessions that were killed before they
        could clean up (a process id means nothing on another machine)."""
        for (name,) in self.admin.execute("SELECT datname FROM pg_database").fetchall():
            leftover = LEFTOVER.fullmatch(name)
            if leftover and not _alive(int(leftover[1])):
                self.admin.execute(
                    sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
                )

    def create(self) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        # An ICU default collation sorts "a" before "Z": batch ids must not depend on it.
        self.admin.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER icu"
                " ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            ).format(sql.Identifier(name))
        )
        self.created.append(name)
        return urlsplit(ADMIN_URL)._replace(path=f"/{name}").geturl()

    def drop_all(self) -> None:
        for name in self.created:
            self.admin.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
            )
        self.admin.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True

"""Queries on authorization servers: the built-in ones, edited or reset, and custom ones."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from mailintake.config.models import ServerSpec
from mailintake.config.servers import BUILTIN_SERVERS, ServerDefinition, server_from_dict
from mailintake.config.validate import merged_server
from mailintake.errors import Conflict, NotFound
from mailintake.store.base import Action, Change, RepoBase, now
from mailintake.store.tables import authorization_servers, mailboxes


class ServerQueries(RepoBase):
    def list_servers(self) -> list[ServerDefinition]:
        stored = {
            r.name: server_from_dict(r.definition, builtin=r.name in BUILTIN_SERVERS)
            for r in self.conn.execute(select(authorization_servers))
        }
        merged = {**BUILTIN_SERVERS, **stored}
        builtins = [merged[n] for n in BUILTIN_SERVERS]
        return builtins + sorted(
            (s for n, s in merged.items() if n not in BUILTIN_SERVERS), key=lambda s: s.name
        )

    def get_server(self, name: str) -> ServerDefinition:
        for server in self.list_servers():
            if server.name == name:
                return server
        raise NotFound(f"no authorization server named '{name}'")

    def server_is_edited(self, name: str) -> bool:
        row = self.conn.execute(
            select(authorization_servers.c.id).where(authorization_servers.c.name == name)
        ).first()
        return row is not None and name in BUILTIN_SERVERS

    def put_server(self, spec: ServerSpec) -> Change:
        server = merged_server(spec, BUILTIN_SERVERS.get(spec.name))
        return self.put_server_definition(server)

    def put_server_definition(self, server: ServerDefinition) -> Change:
        definition = server.to_dict()
        row = self.conn.execute(
            select(authorization_servers).where(authorization_servers.c.name == server.name)
        ).first()
        builtin = BUILTIN_SERVERS.get(server.name)
        if builtin is not None and definition == builtin.to_dict():
            if row is None:
                return Change("authorization_server", server.name, "unchanged")
            self.conn.execute(
                delete(authorization_servers).where(authorization_servers.c.name == server.name)
            )
            return Change("authorization_server", server.name, "reset")
        if row is None:
            self.conn.execute(
                authorization_servers.insert().values(
                    name=server.name, definition=definition, created_at=now(), updated_at=now()
                )
            )
            action: Action = "updated" if builtin is not None else "created"
            return Change("authorization_server", server.name, action)
        if row.definition == definition:
            return Change("authorization_server", server.name, "unchanged")
        self.conn.execute(
            update(authorization_servers)
            .where(authorization_servers.c.name == server.name)
            .values(definition=definition, updated_at=now())
        )
        return Change("authorization_server", server.name, "updated")

    def servers_in_use(self, name: str) -> list[str]:
        rows = self.conn.execute(
            select(mailboxes.c.name)
            .where(mailboxes.c.authorization_server == name)
            .order_by(mailboxes.c.name)
        )
        return [r.name for r in rows]

    def delete_server(self, name: str) -> Change:
        if name in BUILTIN_SERVERS:
            raise Conflict(
                f"authorization server {name} is built in: it can be edited and reset "
                "(mailintake servers reset), not deleted"
            )
        self.get_server(name)
        users = self.servers_in_use(name)
        if users:
            raise Conflict(
                f"authorization server {name} is used by mailbox(es) {', '.join(users)}: "
                "point them at another server or delete them first"
            )
        self.conn.execute(delete(authorization_servers).where(authorization_servers.c.name == name))
        return Change("authorization_server", name, "deleted")

    def reset_server(self, name: str) -> Change:
        if name not in BUILTIN_SERVERS:
            raise Conflict(f"only built-in servers can be reset; {name} is not built in")
        return self.put_server_definition(BUILTIN_SERVERS[name])

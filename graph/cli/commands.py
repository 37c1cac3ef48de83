"""``support-graph``: serve, migrate, export-schema, seed, create-key, revoke-key, register-documents."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from graph.server.settings import SettingsError, from_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="support-graph", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the GraphQL server")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1, env HOST)")
    serve.add_argument("--port", type=int, help="port (default 8000, env PORT)")
    _database_option(serve)
    serve.add_argument(
        "--broker-url",
        help="memory:// (default), postgresql://… (LISTEN/NOTIFY), redis://… (pub/sub); "
        "optional ?channel=NAME; env BROKER_URL",
    )
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default 1)")
    serve.add_argument("--require-auth", action="store_true", default=None, help="refuse callers without an API key")
    serve.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="proxies whose X-Forwarded-For is believed: comma-separated addresses or networks, * for any "
        "(default none; env FORWARDED_ALLOW_IPS)",
    )
    serve.add_argument(
        "--persisted-only",
        action="store_true",
        default=None,
        help="run only documents registered with register-documents, refuse any other (env PERSISTED_ONLY)",
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not upgrade the schema on start; refuse to start unless it is current",
    )
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--log-format", choices=("text", "json"),
        help="text (default: uvicorn's lines) or json (every line one JSON object, one per request); env LOG_FORMAT",
    )  # fmt: skip

    migrate_command = commands.add_parser("migrate", help="upgrade the database schema to the newest revision")
    _database_option(migrate_command)

    export_schema = commands.add_parser("export-schema", help="print the GraphQL SDL (what schema.graphql holds)")
    export_schema.add_argument(
        "--federation", action="store_true",
        help="print the Apollo Federation 2 subgraph SDL instead (what _service { sdl } answers)",
    )  # fmt: skip

    create_key = commands.add_parser("create-key", help="issue an API key (printed once, as the last word)")
    create_key.add_argument("--tenant", required=True, help="the tenant whose data the key sees")
    create_key.add_argument("--actor", help="the actor its events record (default api:<key id>)")
    _database_option(create_key)

    revoke_key = commands.add_parser("revoke-key", help="revoke an API key by its id or the key itself")
    revoke_key.add_argument("key", help="the key id (the part after sgk_) or the whole key")
    _database_option(revoke_key)

    documents = commands.add_parser(
        "register-documents",
        help="register trusted documents (what --persisted-only runs) from a JSON object of hash → document "
        "or an Apollo persisted-query manifest",
    )
    documents.add_argument("file", type=Path, help="the JSON file")
    _database_option(documents)

    seed = commands.add_parser("seed", help="load a realistic demo graph")
    _database_option(seed)
    seed.add_argument("--organizations", type=int, default=20)
    seed.add_argument("--contacts", type=int, default=100)
    seed.add_argument("--tickets", type=int, default=300)
    seed.add_argument("--tenant", default="default")
    seed.add_argument("--seed", type=int, default=7, help="random seed, for a repeatable graph")

    args = parser.parse_args(argv)
    try:
        return _run(args)
    except SettingsError as error:
        print(f"support-graph: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    if args.command == "export-schema":
        from graph.schema import export_sdl, export_subgraph_sdl

        sys.stdout.write(export_subgraph_sdl() if args.federation else export_sdl())
        return 0
    if args.command == "seed":
        return asyncio.run(_seed(args))
    if args.command == "create-key":
        return asyncio.run(_create_key(args))
    if args.command == "revoke-key":
        return asyncio.run(_revoke_key(args))
    if args.command == "register-documents":
        from graph.cli.documents import register_documents

        return asyncio.run(register_documents(args.file, args.database_url or from_environment().database_url))
    if args.command == "migrate":
        return asyncio.run(_migrate(args.database_url or from_environment().database_url))
    return 2


def _database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="sqlite+aiosqlite:///./support-graph.db (default) or postgresql+asyncpg://…, env DATABASE_URL",
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    # Workers build the app from the environment, so flags travel through it.
    for flag, env in (
        ("database_url", "DATABASE_URL"), ("broker_url", "BROKER_URL"), ("host", "HOST"), ("log_format", "LOG_FORMAT"),
        ("port", "PORT"), ("workers", "WORKERS"), ("require_auth", "REQUIRE_AUTH"),
        ("forwarded_allow_ips", "FORWARDED_ALLOW_IPS"), ("persisted_only", "PERSISTED_ONLY"),
    ):  # fmt: skip
        value = getattr(args, flag)
        if value is not None:
            os.environ[env] = str(value)
    settings = from_environment()
    from graph.server import logs, tracing
    from graph.server.metrics import prepare_metrics_directory

    logs.configure(settings.log_format, args.log_level)
    if trouble := tracing.problem():
        print(f"support-graph: {trouble}", file=sys.stderr)
        return 2
    if settings.workers > 1 and settings.broker_url.startswith("memory"):
        print(
            "support-graph: --workers > 1 needs a shared broker (--broker-url redis://… or "
            "postgresql://…): the in-process broker cannot reach other workers.",
            file=sys.stderr,
        )
        return 2
    # Plugins are loaded again by every worker; a broken one is named here, once, before any starts.
    from graph.server.app import deployment_hooks
    from resolvers.hooks import PluginFailed

    try:
        deployment_hooks()
    except PluginFailed as error:
        print(f"support-graph: {error}", file=sys.stderr)
        return 1
    # Migrate once here, not racing in every worker; workers then only check the revision.
    if args.no_migrate or not settings.migrate:
        os.environ["MIGRATE_ON_START"] = "false"
        problem = asyncio.run(_schema_problem(settings.database_url))
        if problem:
            print(f"support-graph: {problem}", file=sys.stderr)
            return 1
    else:
        if asyncio.run(_migrate(settings.database_url, quiet=True)) != 0:
            return 1
        os.environ["MIGRATE_ON_START"] = "false"
    from graph.server.console import addresses

    for line in addresses(settings.host, settings.port, graphiql=settings.graphiql):
        logs.announce(line)
    prepare_metrics_directory(settings.workers)  # where several workers' metrics meet
    uvicorn.run(
        "graph.server.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if settings.workers > 1 else None,
        log_level=args.log_level,
        log_config=logs.log_config(settings.log_format, args.log_level),
        # X-Forwarded-For (and -Proto) from the named proxies only; uvicorn alone would trust 127.0.0.1
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or "",
        # headers must arrive within HEADER_TIMEOUT_SECONDS (slowloris): graph/server/protocol.py
        http="graph.server.protocol:HeaderTimeoutProtocol",
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        # events are ~100-byte JSON messages: compressing each costs more CPU and memory per
        # subscriber than it saves (bench/RESULTS.md, "Live fan-out"); uncompressed frames on this
        # protocol are what graph/server/ws_direct.py writes straight to the socket
        ws="websockets-sansio",
        ws_per_message_deflate=False,
    )
    return 0


async def _create_key(args: argparse.Namespace) -> int:
    from models.db import migrate
    from models.db.engine import Database
    from resolvers.keys import create_key

    db = Database(args.database_url or from_environment().database_url)
    try:
        await migrate.upgrade(db)
        try:
            row, key = await create_key(db, tenant=args.tenant, actor=args.actor)
        except ValueError as error:
            print(f"support-graph: {error}", file=sys.stderr)
            return 2
    finally:
        await db.dispose()
    print(f"Key {row.id} for tenant {row.tenant!r}, actor {row.actor!r}. It is shown only now:")
    print(key)
    return 0


async def _revoke_key(args: argparse.Namespace) -> int:
    from models.db.engine import Database
    from resolvers.keys import revoke_key

    db = Database(args.database_url or from_environment().database_url)
    try:
        revoked = await revoke_key(db, args.key)
    finally:
        await db.dispose()
    if not revoked:
        print("support-graph: no live key with that id", file=sys.stderr)
        return 1
    print("revoked (servers stop accepting it within 10 seconds)")
    return 0


async def _schema_problem(url: str) -> str | None:
    from graph.server.app import SchemaNotCurrent, prepare_schema
    from models.db.engine import Database

    db = Database(url)
    try:
        await prepare_schema(db, upgrade=False)
    except SchemaNotCurrent as error:
        return str(error)
    finally:
        await db.dispose()
    return None


async def _migrate(url: str, *, quiet: bool = False) -> int:
    from models.db import migrate
    from models.db.engine import Database

    db = Database(url)
    try:
        await migrate.upgrade(db)
        if not quiet:
            print(f"schema at revision {await migrate.current(db)}")
    finally:
        await db.dispose()
    return 0


async def _seed(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # type: ignore[import-untyped]  # no stubs installed (types-tqdm)

    from graph.cli.seed import seed
    from graph.server.app import deployment_hooks
    from models.db.engine import Database

    db = Database(args.database_url or from_environment().database_url)
    from models.db import migrate

    await migrate.upgrade(db)
    total = args.organizations + args.contacts + args.tickets
    with tqdm(total=total, unit="entity", desc="seeding") as bar:
        counts = await seed(
            db, hooks=deployment_hooks(), tenant=args.tenant, organizations=args.organizations, contacts=args.contacts,
            tickets=args.tickets, random_seed=args.seed, progress=bar.update,
        )  # fmt: skip
    await db.dispose()
    print(", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return 0

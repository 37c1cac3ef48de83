"""The webhook address guard: with ``require_auth`` every private, loopback, link-local,
multicast, unspecified, mapped or oddly written address is refused at create and update
(``BAD_USER_INPUT``) and again at send time; the connection goes to the address checked."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

import resolvers.keys
from graph.server.ssrf import UrlGuard, UrlRefused
from tests.databases import fresh_database
from tests.live import LiveServer
from tests.test_webhook_receiver import Receiver
from tests.test_webhooks import CREATE, Caller, webhook_server

REFUSED = [
    "http://127.0.0.1/hook", "http://127.0.0.2:8080/hook", "http://localhost/hook", "http://10.0.0.1/",
    "http://172.16.5.4/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0/",
    "http://224.0.0.1/", "http://100.64.0.1/", "http://[::1]/", "http://[::]/", "http://[fe80::1]/",
    "http://[fc00::1]/", "http://[ff02::1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:8.8.8.8]/",
    "http://[2002:7f00:1::]/", "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/",
    "http://127.1/", "http://0x7f.0.0.1/", "http://017700000001/", "ftp://example.com/", "file:///etc/passwd",
    "gopher://example.com/", "http:///nohost", "https://user:pw@127.0.0.1/",
]  # fmt: skip


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Caller]]:
    with (
        fresh_database("sqlite", tmp_path_factory.mktemp("ssrf")) as url,
        webhook_server(url, require_auth=True) as server,
    ):  # fmt: skip
        _, key = server.run(resolvers.keys.create_key(server.services.db, tenant="guarded", actor="ops"))
        yield server, Caller(server, key)


@pytest.mark.parametrize("url", REFUSED)
def test_create_refuses_every_private_form(guarded, url: str):
    _, caller = guarded
    error = caller.error(CREATE, {"input": {"url": url, "events": ["*"]}})
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error


def test_update_refuses_them_too(guarded):
    server, caller = guarded
    hook = _insert_webhook(server, "https://93.184.215.14/hook")  # a public address: allowed
    update = "mutation($id: ID!, $url: String!) { updateWebhook(id: $id, input: {url: $url}) { url } }"
    for url in ("http://127.0.0.1/", "http://[::ffff:10.0.0.1]/", "http://0x0a000001/"):
        error = caller.error(update, {"id": hook, "url": url})
        assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_private_address_is_refused_again_at_send_time(guarded):
    """A url that passed the check (written behind the API's back here; a DNS answer that
    changed, in life) is checked again before each attempt: the receiver gets nothing."""
    server, caller = guarded
    receiver = Receiver().start()
    try:
        where = f"/{uuid.uuid4().hex[:8]}"
        hook = _insert_webhook(server, receiver.url(where))
        caller.data('mutation { createTicket(input: {subject: "x"}) { id } }')
        query = "query($id: ID!) { webhook(id: $id) { deliveries(first: 5) { nodes { status attempts { error } } } } }"
        deadline = time.monotonic() + 20
        while True:
            nodes = caller.data(query, {"id": hook})["webhook"]["deliveries"]["nodes"]
            if nodes and nodes[0]["attempts"]:
                break
            assert time.monotonic() < deadline, "no attempt was recorded"
            time.sleep(0.1)
        assert "loopback" in nodes[0]["attempts"][0]["error"]
        assert receiver.received(where) == []
    finally:
        receiver.stop()


def _insert_webhook(server: LiveServer, url: str) -> str:
    hook = f"webhook_{uuid.uuid4().hex[:10]}"
    now = "2026-01-01 00:00:00.000000"
    seq = server.sql("SELECT COALESCE(MAX(last_seq), 0) FROM tenant_sequence WHERE tenant = 'guarded'")[0][0]

    async def go() -> None:
        async with server.services.db.writing() as session:
            await session.execute(
                text(
                    "INSERT INTO webhook (id, tenant, version, created_at, updated_at, created_by, url, events, "
                    "active, secret, last_seq) VALUES (:id, 'guarded', 1, :now, :now, 'ops', :url, '[\"*\"]', 1, "
                    "'whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0', :seq)"
                ),
                {"id": hook, "now": now, "url": url, "seq": seq},
            )
            await session.commit()

    server.run(go())
    return hook


# --- the guard itself -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", REFUSED)
def test_the_guard_refuses_them_at_send_time(url: str):
    with pytest.raises(UrlRefused):
        asyncio.run(UrlGuard(require_auth=True, allow_private=False).target(url))


def test_the_connection_goes_to_the_checked_address():
    guard = UrlGuard(require_auth=True, allow_private=False)
    target = asyncio.run(guard.target("https://93.184.215.14:8443/in?x=1"))
    assert target.url == "https://93.184.215.14:8443/in?x=1" and target.headers == {"host": "93.184.215.14:8443"}


def test_a_name_is_sent_to_its_resolved_address_with_its_own_host_and_tls_name(monkeypatch):
    async def resolve(host: str, port: int):
        import ipaddress

        return [ipaddress.ip_address("93.184.215.14")]

    monkeypatch.setattr("graph.server.ssrf.resolve", resolve)
    target = asyncio.run(UrlGuard(require_auth=True, allow_private=False).target("https://hooks.example.com/x"))
    assert target.url == "https://93.184.215.14/x"
    assert target.headers == {"host": "hooks.example.com"} and target.extensions == {
        "sni_hostname": "hooks.example.com"
    }


def test_private_addresses_are_allowed_when_told_or_without_require_auth():
    guard = UrlGuard(require_auth=True, allow_private=True)
    assert asyncio.run(guard.target("http://127.0.0.1:9/x")).url == "http://127.0.0.1:9/x"
    assert asyncio.run(UrlGuard(require_auth=False, allow_private=False).target("http://10.1.2.3/")).headers == {}

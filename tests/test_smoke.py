"""The server answers over HTTP: health, readiness, and a first ticket."""


def test_health_and_readiness(server):
    assert server.http.get("/healthz").json() == {"status": "ok"}
    ready = server.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


def test_create_ticket_records_its_event(server):
    ticket = server.data('mutation { createTicket(input: {subject: "Printer on fire"}) { id status version } }')[
        "createTicket"
    ]
    assert ticket["id"].startswith("ticket_") and ticket["status"] == "OPEN" and ticket["version"] == 1
    events = server.data(
        "query($id: ID!) { ticket(id: $id) { events { nodes { type version } } } }", {"id": ticket["id"]}
    )
    assert events["ticket"]["events"]["nodes"] == [{"type": "Ticket.Created", "version": 1}]

"""What the tests share (no test module imports another; fixtures live in conftest.py files).
CONTRIBUTING.md ("Where helpers and fixtures live") lists the modules by subject: the sandbox
tenant and sign-in (oauth), mail on Dovecot (mail, dovecot) and on the Graph emulator (graph,
graph_sandbox, graph_push), imports from the memory source (memory), the edges as tests drive
them (web, web_admin, cli), receivers and servers (http_receiver, webhook_endpoint, smtp,
proxy, alerts), the contract suite's sources and outputs (sources, outputs), and the rest
(store, documents, clock, malformed, crash_poll, launcher, wire, certs, services)."""

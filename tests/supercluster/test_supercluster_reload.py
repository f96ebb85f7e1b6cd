"""SIGHUP with a changed ``gateway {}`` block: as nats-server, only the TLS
material may change while running; anything else refuses the reload and the
running gateway stays as it was."""

from pluggy_nats.testing.supercluster import gatewayz

BLOCK = 'gateway { name: "A", listen: "127.0.0.1:-1"%s }\n'


def test_supercluster_reload_refuses_gateway_changes(make_server):
    server = make_server("-m", "-1", config=BLOCK % "", name="main")
    server.reload(BLOCK % ', gateways: [{name: "B", url: "nats://127.0.0.1:1"}]')
    assert "config reload not supported for Gateway (gateways changed)" in server.logs()
    assert gatewayz(server)["name"] == "A"
    server.reload(BLOCK % ", reject_unknown_cluster: true")
    assert "config reload not supported for Gateway (reject_unknown changed)" in server.logs()
    before = server.logs().count("config_reloaded")
    server.reload(BLOCK % "")  # unchanged: accepted
    assert server.logs().count("config_reloaded") == before + 1

"""``write_deadline`` and ``write_timeout`` in the gateway, leafnodes and
cluster blocks: one parser (``parse_write_timeout``) with nats-server's
policies and error text; what a link then takes (``Link.__init__``)."""

import pytest
from pluggy_nats_plugins.gateway.config import parse_gateway
from pluggy_nats_plugins.leafnode.config import parse_leafnodes
from pluggy_nats_plugins.route import parse_cluster

from pluggy_nats.conf import ConfigError, loads

GO_TEXT = "write_timeout must be 'default', 'close' or 'retry'"


def blocks(deadline, policy):
    keys = 'write_deadline: "%s", write_timeout: %s' % (deadline, policy)
    conf = loads('gateway { name: A, port: 7222, %s }\nleafnodes { port: 7422, %s }\n'
                 'cluster { port: 6222, %s }\n' % (keys, keys, keys), "t.conf")
    return (parse_gateway(conf["gateway"], conf.position("gateway")),
            parse_leafnodes(conf["leafnodes"]), parse_cluster(conf["cluster"], None))


@pytest.mark.parametrize("policy", ["default", "close", "retry"])
def test_each_block_reads_both_keys(policy):
    for cfg in blocks("250ms", policy):
        assert (cfg.write_deadline, cfg.write_timeout) == (0.25, policy), type(cfg)


def test_unknown_policy_has_go_text():
    for name in ("gateway", "leafnodes", "cluster"):
        conf = loads("%s { port: 1, write_timeout: sometimes }\n" % name, "t.conf")
        with pytest.raises(ConfigError) as exc:
            if name == "gateway":
                parse_gateway(conf[name], conf.position(name))
            elif name == "leafnodes":
                parse_leafnodes(conf[name])
            else:
                parse_cluster(conf[name], None)
        assert any(GO_TEXT in msg for _pos, msg in exc.value.errors), exc.value.errors

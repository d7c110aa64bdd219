"""The CLI refuses bad DNS and node options with a clear error, before starting anything."""

from click.testing import CliRunner

from cli.main import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_process_refuses_an_unknown_ip_source():
    result = run("process", "--bootstrap", "127.0.0.1:1", "--dns-ip-sources", "host,bogus")
    assert result.exit_code == 2
    assert "ip_sources must name at least one of host, netinfo, mesos, docker; got ['host', 'bogus']" in result.output


def test_node_refuses_a_malformed_forward_zone_and_a_host_name_upstream():
    common = ("node", "--bootstrap", "127.0.0.1:1", "--node-id", "n", "--agent-ip", "10.0.0.1", "--roles", "dns")
    zone = run(*common, "--forward-zone", "corp.example")
    assert zone.exit_code == 2 and "expected ZONE=IP[:PORT][,IP[:PORT]...], got 'corp.example'" in zone.output
    upstream = run(*common, "--upstream", "dns.example.com")
    assert upstream.exit_code == 2 and "dns.example.com" in upstream.output


def test_node_refuses_dns_tcp_limits_below_one():
    common = ("node", "--bootstrap", "127.0.0.1:1", "--node-id", "n", "--agent-ip", "10.0.0.1", "--roles", "dns")
    result = CliRunner().invoke(main, [*common, "--dns-tcp-per-client", "0"])
    assert result.exit_code == 2
    assert "--dns-tcp-per-client" in result.output and "0 is not in the range x>=1" in result.output

"""`wayfinder overlay`: this node's overlay as the lease table asks for it, next to its kernel;
and `wayfinder overlay docker-network`, the command that makes the node's Docker network."""

from __future__ import annotations

import click

from runtime.settings import bootstrap_option, namespace_option, resolve_bootstrap
from schemas.catalog import Catalog


def _leases(bootstrap: str | None, namespace: str) -> list:
    from runtime.kafka.reader import read_table
    from schemas import codec
    from schemas.overlay import Lease

    topic = Catalog(namespace).topic("overlay")
    return [codec.decode(value, Lease) for value in read_table(resolve_bootstrap(bootstrap), topic.name).values()]


@click.group("overlay", invoke_without_command=True)
@bootstrap_option
@namespace_option
@click.option("--netns", default=None, help="Read the kernel of this named network namespace.")
@click.option("--agent-ip", default=None, help="This node's agent IP (default: the local address of its vtep1024).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of lines.")
@click.pass_context
def overlay_group(ctx, bootstrap, namespace, netns, agent_ip, as_json):
    """This node's overlay leases and peers, next to what its kernel holds."""
    if ctx.invoked_subcommand is not None:
        return
    import orjson

    from appliers.overlay.inspect import as_lines, compare
    from appliers.overlay.kernel import OverlayKernel
    from cli.checks import check_netns

    check_netns(netns)
    kernel = OverlayKernel(netns)
    try:
        state = kernel.read()
    finally:
        kernel.close()
    agent_ip = agent_ip or (state.vtep.local if state.vtep else None)
    if not agent_ip:
        raise click.UsageError("no vtep1024 in this kernel to take the agent IP from: pass --agent-ip")
    report = compare(_leases(bootstrap, namespace), agent_ip, state)
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        for line in as_lines(report):
            click.echo(line)


@overlay_group.command("docker-network")
@bootstrap_option
@namespace_option
@click.option("--agent-ip", required=True, help="This node's agent IP (it finds the node's leases).")
@click.option("--overlay", "overlay_name", default=None, help="Only this overlay (default: every overlay of the node).")
def docker_network_command(bootstrap, namespace, agent_ip, overlay_name):
    """Print the `docker network create` command of each of this node's leases (the second half)."""
    from appliers.overlay.cni import docker_command_line, docker_network
    from appliers.overlay.model import own_leases

    mine = [lease for lease in own_leases(_leases(bootstrap, namespace), agent_ip)
            if overlay_name is None or lease.overlay == overlay_name]
    if not mine:
        raise click.ClickException(f"no lease of agent {agent_ip}" + (f" on overlay {overlay_name}" if overlay_name else ""))
    for lease in mine:
        click.echo(docker_command_line(docker_network(lease)))

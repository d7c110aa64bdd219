"""`wayfinder vips`: what a node's kernel has programmed, next to the desired VIP table.

The desired table comes from the node itself when `--node` names its status endpoint
(appliers/status_server.py): one local request, where replaying the vips topic takes seconds
on a large cluster. When no node answers there, it comes from the topic, and a line on stderr
says which source was used.
"""

from __future__ import annotations

import http.client
import socket

import click

from cli.running import one_shot_kafka
from runtime.settings import bootstrap_option, namespace_option, resolve_bootstrap
from schemas.catalog import Catalog

NODE_TIMEOUT_S = 2.0  # a node that takes longer is not answering: the topic instead


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def _connection(node: str) -> http.client.HTTPConnection:
    """`node` is a unix socket path (it holds a ``/`` and no scheme), ``http://HOST:PORT`` or
    ``HOST:PORT``."""
    address = node.removeprefix("http://").rstrip("/")
    if "/" in address:
        return _UnixConnection(node, NODE_TIMEOUT_S)
    return http.client.HTTPConnection(address, timeout=NODE_TIMEOUT_S)


def vips_from_node(node: str):
    """The node's desired VIP table (appliers.status_body.NodeVips); OSError or ValueError
    when it does not answer with one."""
    import msgspec

    from appliers.status_body import NodeVips

    connection = _connection(node)
    try:
        connection.request("GET", "/v1/vips")
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        raise OSError(str(error) or type(error).__name__) from None
    finally:
        connection.close()
    if response.status != 200:
        raise ValueError(f"HTTP {response.status}: {body[:200].decode(errors='replace')}")
    try:
        return msgspec.json.decode(body, type=NodeVips)
    except msgspec.ValidationError as error:
        raise ValueError(f"not a VIP table: {error}") from None


def _vips_from_topic(bootstrap: str | None, catalog: Catalog) -> dict:
    from runtime.kafka.reader import read_table
    from schemas import codec
    from schemas.l4lb import Vip

    topic = catalog.topic("vips").name
    return {k: codec.decode(v, Vip) for k, v in read_table(one_shot_kafka(resolve_bootstrap(bootstrap), catalog, "vips"), topic).items()}


@click.command("vips")
@bootstrap_option
@namespace_option
@click.option("--node", default=None, metavar="SOCKET|HOST:PORT",
              help="Ask this node's status endpoint (its --status-listen) for the desired VIPs instead of "
                   "replaying the vips topic; the topic when it does not answer.")
@click.option("--netns", default=None, help="Read the kernel of this named network namespace.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list instead of lines.")
def vips_command(bootstrap, namespace, node, netns, as_json):
    """What the node's kernel has programmed, next to what the node (or the vips topic) asks for."""
    import orjson

    from appliers.l4lb.elements import ReadInterrupted
    from appliers.l4lb.inspect import as_lines, compare
    from appliers.l4lb.kernel import Kernel
    from cli.checks import check_netns

    check_netns(netns)
    catalog = Catalog(namespace)
    wanted = None
    if node:
        try:
            answer = vips_from_node(node)
            wanted = answer.vips
            click.echo(f"desired VIPs: from the node at {node} ({answer.role} loop, "
                       f"{'ready' if answer.ready else 'not ready yet'})", err=True)
        except (OSError, ValueError) as error:
            click.echo(f"desired VIPs: the node at {node} did not answer ({error}); "
                       f"replaying the topic {catalog.topic('vips').name}", err=True)
    if wanted is None:
        wanted = _vips_from_topic(bootstrap, catalog)
        if not node:
            click.echo(f"desired VIPs: from the topic {catalog.topic('vips').name}", err=True)
    kernel = Kernel(netns)
    try:
        held = kernel.read_elements()
    except (OSError, ReadInterrupted) as error:  # not root, most often (reading nf_tables needs CAP_NET_ADMIN)
        raise click.ClickException(f"cannot read the kernel's nftables{f' in {netns}' if netns else ''}: {error}") from None
    finally:
        kernel.close()
    entries = compare(wanted, held)
    if as_json:
        click.echo(orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode())
    else:
        for line in as_lines(entries):
            click.echo(line)

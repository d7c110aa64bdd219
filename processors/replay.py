"""A fresh derivation of the processor's outputs from whole source tables (pure): what every
output topic must equal once a processor has caught up, whoever was active before.

Named-VIP addresses are history, not a function of the sources (an address is kept for as
long as its name is wanted), so the derivation takes the addresses the ``vips`` topic holds
as its previous allocation, like a processor that takes over does.
"""

from __future__ import annotations

from collections.abc import Mapping

from processors.dns.agent import DnsStage
from processors.dns.config import DnsConfig
from processors.haproxy.agent import HaproxyStage
from processors.l4lb.agent import L4Stage
from processors.overlay.agent import OverlayStage
from processors.overlay.config import OverlayConfig
from processors.stage import SourceRecord, Stage
from schemas.catalog import Catalog
from schemas.headers import Observation


def processor_stages(catalog: Catalog, dns: DnsConfig | None = None, overlay: OverlayConfig | None = None) -> list[Stage]:
    """Every stage of the processor, one per output table, in the order they apply a batch:
    the overlay stage before the DNS stage, which checks container addresses against its
    leases (read in place, no Kafka round trip) and derives again the tasks of every agent
    whose leases it reports changed."""
    leases = OverlayStage(catalog, overlay)
    names = DnsStage(catalog, dns, leases.overlay_leases())
    leases.on_leases_changed.append(names.leases_changed)
    return [L4Stage(catalog), leases, names, HaproxyStage(catalog)]


def fresh_outputs(catalog: Catalog, sources: Mapping[str, Mapping[str, bytes]], published: Mapping[str, Mapping[str, bytes]],
                  dns: DnsConfig | None = None, overlay: OverlayConfig | None = None) -> dict[str, dict[str, bytes]]:
    """Output alias -> the table (key -> encoded value) the stages derive from `sources`
    (alias -> key -> encoded value); `published` (output alias -> table) seeds named VIPs
    and overlay leases."""
    stages = processor_stages(catalog, dns, overlay)
    obs = Observation.now()
    batch = {alias: [SourceRecord(alias, key, value, obs) for key, value in table.items()]
             for alias, table in sources.items()}
    outputs = {}
    for stage in stages:
        stage.start(published.get(stage.output, {}))
        stage.apply(batch)
        outputs[stage.output] = stage.encoded_records()
    return outputs

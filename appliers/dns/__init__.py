"""The node's DNS server: cluster zones answered authoritatively from memory, other names
forwarded.

records (Record, RRset: canonical data) -> zone (ZoneSet: the store and the lookup rules) ->
answer (Answerer: query bytes to reply bytes; routing: the dcos-dns aliases) and fastpath
(pre-encoded replies for the common query) <- server (DnsServer: UDP/TCP).
Forwarding: routing (which upstreams), upstreams (decaying scores), cache, wire (reading
replies), acl (who may recurse), resolver (Forwarder: the upstream I/O).
mesos_api + http_server: the Mesos-DNS HTTP API. l4lb_names: VIP names once in the kernel.
role: the node's dns role, the dns topic into the zones.
"""

"""The node's DNS server: cluster zones answered authoritatively from memory.

records (Record: canonical data) -> zone (ZoneSet: the store and the lookup rules) ->
answer (Answerer: query bytes to reply bytes) <- server (DnsServer: UDP/TCP, the only I/O).
"""

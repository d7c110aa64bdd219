"""L4 VIPs in the kernel: nftables DNAT sets and maps in one table `wayfinder` per family.

desired (records -> kernel form) and model (data, parse) -> render (nft text) -> plan
(smallest transaction) -> kernel (the only side effects, optionally inside a netns)
<- applier (the reconcile object).
"""

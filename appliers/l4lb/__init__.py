"""L4 VIPs in the kernel: nftables DNAT maps in one table `wayfinder` per family.

model (data, parse) -> render (nft text) -> plan (smallest transaction) -> kernel (the only
side effects, optionally inside a netns) <- applier (the reconcile object).
"""

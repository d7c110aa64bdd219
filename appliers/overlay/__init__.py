"""The overlay node role: this node's VXLAN device, its peers, the masquerade rule and the CNI
configs, from the `overlay` lease table (see role.py)."""

"""L4 virtual IPs: task VIP labels -> the VIP table every node programs (pure derivation)."""

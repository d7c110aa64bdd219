"""`wayfinder demo` (run.py) and its network half (network.py)."""

"""The `haproxy` node role's pieces: settings, the pure renderer and slot planner, and the
seams to HAProxy (process, runtime API) and to openssl (certificate)."""

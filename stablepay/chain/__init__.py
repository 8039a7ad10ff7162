"""Chain access: the reader interface, its JSON-RPC implementation and hand-written log decoding."""

"""Chain access: the reader interface, its JSON-RPC implementation, the reader factory and hand-written log
decoding."""

"""Reading the chain into the ledger: the watcher, its header chain and reorg handling, the watch loop, /healthz
figures and the chain audit.
"""

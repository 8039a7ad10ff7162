"""Reading the chain into the ledger: the watcher, its header chain and reorg handling, the watch loop and its periodic
job list (schedule), /healthz figures and the chain audit.
"""

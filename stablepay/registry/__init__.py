"""What stablepay knows about the world: chains, tokens, licence policy, token contract health, FX and API-key
lookups (cached), API-key hashing.
"""

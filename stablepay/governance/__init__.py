"""Who may change where money goes: change proposals with two people, and the setup file that configures
merchants, chains and tokens.
"""

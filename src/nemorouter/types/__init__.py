"""The bottom floor: the words every package may use (DESIGN §3).

Modules here import nothing of nemorouter's but this package, so core, providers, state and
store can all share them without importing each other.
"""

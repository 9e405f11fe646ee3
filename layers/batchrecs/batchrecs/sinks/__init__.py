"""Sinks: where per-user records are delivered."""

"""The merchant REST API (CONTRACT §4), under /api/v1/."""

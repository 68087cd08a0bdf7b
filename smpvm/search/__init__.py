"""Searching schedules: the exploration driver, its workers, exhaustive search, shrinking,
saved failures and replay, the merged lock-order loop, and where runs execute."""

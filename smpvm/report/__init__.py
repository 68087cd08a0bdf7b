"""What a run leaves for people to read: traces, narratives, timelines, lock-order pictures."""

"""The mirror reconciler: it compares runs in Postgres with Temporal and repairs what disagrees."""

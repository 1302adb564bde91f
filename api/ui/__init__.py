"""The web inspector at /ui: server-rendered pages over the store, a little JavaScript."""

"""The meaning of a definition, pure (no I/O): templates, their bounds, the context, the diff."""

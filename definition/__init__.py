"""The meaning of a definition, pure (no I/O): validation, size limits, templates and their
bounds, JMESPath expressions, the context, the version diff."""

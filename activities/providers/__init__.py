"""Model providers behind one small interface, looked up by name in ``registry``.

Importing this package does not import any SDK: ``registry`` is pure, and the SDK-backed
modules (``openai_provider``, ``anthropic_provider``) register themselves when imported by
``registry.load_builtin()``.
"""

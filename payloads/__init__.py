"""Payloads beyond workflow code: the AES-GCM codec and its keys, storage, the codec API."""

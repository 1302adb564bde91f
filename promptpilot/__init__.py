"""The composition roots and settings: the CLI, the services a process runs, the Temporal client and
converter, the worker build and its deployments."""

"""Workflow type names, shared by the workflows that start each other and by the API."""

WORKFLOW_NAME = "PromptPilotRun"
MAP_BATCH_WORKFLOW = "PromptPilotMapBatch"

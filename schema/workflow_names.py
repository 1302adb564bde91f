"""Workflow type names: the workflows that start each other, the activities and the API use them."""

WORKFLOW_NAME = "PromptPilotRun"
MAP_BATCH_WORKFLOW = "PromptPilotMapBatch"
TRIGGERED_START_WORKFLOW = "PromptPilotTriggeredStart"

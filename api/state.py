"""What the API process holds for its lifetime: settings, the store and Temporal clients."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.client import Client

from api.auth_throttle import AuthThrottle
from api.start_dispatcher import StartDispatcher
from payloads.codec import EncryptionCodec
from payloads.secret_box import SecretBox
from promptpilot.settings import Settings
from promptpilot.temporal import connect, key_ring
from reconcile.reconciler import RunReconciler
from store.events import RunEventHub
from store.keys import ApiKeys
from store.runs import Store


@dataclass
class AppState:
    """Shared services; one Temporal client per environment's namespace, made on first use."""

    settings: Settings
    store: Store
    keys: ApiKeys
    clients: dict[str, Client] = field(default_factory=dict)
    reconcilers: dict[str, RunReconciler] = field(default_factory=dict)
    starts: StartDispatcher | None = None
    """Starts recorded runs in Temporal (set by the app's lifespan)."""
    run_events: RunEventHub = field(init=False)
    """The process's LISTEN on run events (connected on first use): waits and streams."""
    auth_throttle: AuthThrottle = field(init=False)
    """Failed-authentication counts of this process (API bearer check and inspector sign-in)."""

    secret_box: SecretBox = field(init=False)
    """Seals webhook secrets at rest with the payload key ring."""

    def __post_init__(self) -> None:
        self.run_events = RunEventHub(self.store.engine)
        self.auth_throttle = AuthThrottle(self.settings.api.auth_throttle)
        ring = key_ring(self.settings)
        self.secret_box = SecretBox(EncryptionCodec(ring) if ring is not None else None)

    async def temporal(self, environment: str) -> Client:
        """The client for an environment (its own namespace)."""
        client = self.clients.get(environment)
        if client is None:
            client = await connect(self.settings, self.settings.namespace_for(environment))
            self.clients[environment] = client
        return client

    async def reconciler(self, environment: str) -> RunReconciler:
        """Checks single runs of an environment against Temporal (on read and on cancel)."""
        reconciler = self.reconcilers.get(environment)
        if reconciler is None:
            reconciler = RunReconciler(self.store, await self.temporal(environment),
                                       environment, self.settings.reconcile)
            self.reconcilers[environment] = reconciler
        return reconciler

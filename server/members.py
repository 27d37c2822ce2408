"""What a run's parts (its waiting room, its conversations) may ask of the run about its workers.

`Run` keeps the per-agent tables (the agents this process holds, their states, their workers) and is their
one owner: the waiting room and the conversation host read them through this seam and change a state only
through `move`, which the run fences with its lease (server/fence.py)."""

from __future__ import annotations

from typing import Any, Protocol

from server.agents import HumanAgent
from server.states import AgentState
from server.store import AgentRow


class Members(Protocol):
    id: str  # the run's

    def human(self, agent_id: str) -> HumanAgent | None:
        """The agent, if this process holds it."""

    def state(self, agent_id: str) -> AgentState | None:
        """The agent's state, if this process holds it."""

    def worker_of(self, agent_id: str) -> str:
        """The worker an agent held here belongs to."""

    async def load_agent(self, row: AgentRow) -> HumanAgent:
        """The agent of a stored row, loaded if this process does not hold it yet."""

    async def move(
        self, agent_id: str, target: AgentState, *, text: str | None = None,
        role: str | None = None, conversation_id: str | None = None,
    ) -> bool:
        """Store a state change and put it on the agent's stream; False if it is no longer legal."""

    async def notify(self, kind: str, payload: dict[str, Any]) -> None:
        """Tell the run's observers (the HIT manager) what happened."""

"""The public authoring API: messages, agents, worlds, onboarding and the Task declaration.

The vocabulary is ParlAI's, made async: agents `observe(message)` and `await act(timeout=...)`; a world's
`parley()` runs one turn and `episode_done()` says when it is over; `run()` loops `parley()` by default
and may be overridden for a linear script. Worlds never touch the database: they `await self.save(data)`.
"""

from __future__ import annotations

import csv
import inspect
import json
import math
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

MessageKind = Literal["chat", "context", "system"]


@dataclass
class Message:
    """One thing said or shown. `kind="context"` goes to the task pane, `"system"` is a notice."""

    text: str = ""
    sender: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    kind: MessageKind = "chat"
    episode_done: bool = False
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "sender": self.sender,
            "data": self.data,
            "kind": self.kind,
            "episode_done": self.episode_done,
            "id": self.id,
        }


@dataclass(frozen=True)
class Widget:
    """What input the page shows for a turn. Built with the helpers below; the page renders each kind.

    kinds: text (free text, the default), rating (min..max), choice (one of options),
    checkboxes (any of options), form (several fields, each a widget dict with a `name`),
    fragment (the task's own page fragment for a role, see `Task.ui`).
    """

    kind: str
    spec: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.spec}


def text_input(placeholder: str = "Type your message...", max_length: int | None = None) -> Widget:
    """Free text. Without `max_length` the limit is the server's (`PARLEY_MAX_MESSAGE_CHARS`); a task may ask
    for less. The page refuses longer text with a message; it never cuts what the worker wrote."""
    spec: dict[str, Any] = {"placeholder": placeholder}
    if max_length is not None:
        spec["max_length"] = max_length
    return Widget("text", spec)


def rating(low: int, high: int, labels: tuple[str, str] = ("", "")) -> Widget:
    return Widget("rating", {"min": low, "max": high, "labels": list(labels)})


def choice(options: list[str]) -> Widget:
    return Widget("choice", {"options": options})


def checkboxes(options: list[str], *, about: str | None = None) -> Widget:
    """Any of `options`. With `about=message_id` the page shows the boxes under that chat message."""
    spec: dict[str, Any] = {"options": options}
    if about is not None:
        spec["message_id"] = about
    return Widget("checkboxes", spec)


def form(fields: list[tuple[str, str, Widget]]) -> Widget:
    """A survey: each field is (name, label, widget)."""
    return Widget(
        "form",
        {"fields": [{"name": name, "label": label, **w.to_dict()} for name, label, w in fields]},
    )


def fragment(role: str, *, fields: list[str] | None = None) -> Widget:
    """The task's own fragment for `role` (`Task(ui={role: path})`) as the turn's input. The answer arrives
    as `{"form": {name: value}}` from the fragment's named fields; `fields` lists the ones that must be filled."""
    spec: dict[str, Any] = {"role": role}
    if fields is not None:
        spec["fields"] = list(fields)
    return Widget("fragment", spec)


def image(asset: str, *, caption: str = "", alt: str = "") -> dict[str, str]:
    """A picture of the task's assets (`Task(assets=<dir>)`), by its path inside that folder, for a message's
    data: `Message(kind="context", data={"images": [image("cat.png", caption="A cat")]})`. The page shows
    `data["images"]` in the task pane (context messages) or under the chat line (chat messages), each with
    its caption as text; `alt` (default: the caption) is read to those who cannot see it."""
    return {"asset": asset, "caption": caption, "alt": alt or caption}


class AgentTimeout(Exception):
    """An agent did not act within its timeout. The runner ends the conversation unless the world catches it."""

    def __init__(self, role: str) -> None:
        super().__init__(f"{role} did not act in time")
        self.role = role


class TurnEnded(Exception):
    """Parley ended an open turn from outside the world (the agent left, or the conversation was ended).
    The world should let it propagate: the runner ends the conversation and lets every worker submit."""

    def __init__(self, role: str, reason: str) -> None:
        super().__init__(f"the turn of {role} ended: {reason}")
        self.role = role
        self.reason = reason


@runtime_checkable
class Agent(Protocol):
    """Anything that takes part in a world: a human over a websocket, or a bot."""

    role: str

    async def observe(self, message: Message) -> None: ...

    async def act(
        self, timeout: float | None = None, *, prompt: str = "", widget: Widget | None = None
    ) -> Message:
        """The agent's next message. `timeout` (seconds) bounds the turn; None means the task's
        `Timeouts.turn`. Raises AgentTimeout when it runs out, TurnEnded when Parley ends the turn."""
        ...


Saver = Callable[[dict[str, Any]], Awaitable[None]]
_SEED: ContextVar[str | None] = ContextVar("world_seed", default=None)  # set by Task.build_world
GOLD_KEY = "_gold"  # in a world's saved result: its gold checks, [{"role", "passed", "item"}] (see World.gold)


class World:
    """One conversation. Subclasses implement `parley()` (one turn) and `episode_done()`, or `run()`."""

    def __init__(self, agents: list[Agent], context: Any = None, *, saver: Saver | None = None) -> None:
        self.agents = agents
        self.context = context
        self._saver = saver
        self.turns = 0
        self._saved: dict[str, Any] = {}
        self._gold: list[dict[str, Any]] = []
        # The world's random choices (a role order, a sample, a shuffle) come from here: seeded per
        # conversation, so the replay that continues it after a restart makes the same ones.
        self.random = random.Random(_SEED.get())

    def agent(self, role: str) -> Agent:
        for agent in self.agents:
            if agent.role == role:
                return agent
        raise KeyError(f"no agent plays {role!r} in this world")

    async def parley(self) -> None:
        raise NotImplementedError("a world implements parley() or overrides run()")

    def episode_done(self) -> bool:
        return True

    async def run(self) -> None:
        while not self.episode_done():
            await self.parley()
            self.turns += 1

    async def save(self, data: dict[str, Any]) -> None:
        """Keep this world's result. Call it as often as useful; the last call wins."""
        self._saved = dict(data)
        if self._saver is not None:
            await self._saver({**data, GOLD_KEY: list(self._gold)} if self._gold else data)

    async def gold(self, agent: Agent, passed: bool, item: str = "") -> bool:
        """Record one gold check of `agent` (an answer the task knows): kept with the world's result, and acted
        on as the task's `GoldPolicy` says (qualification score, soft block, flag for rejection). Returns
        `passed`, so a world can write `if not await self.gold(worker, answer == expected, "pair-7"): ...`."""
        self._gold.append({"role": agent.role, "passed": bool(passed), "item": item})
        await self.save(self._saved)
        return passed

    async def broadcast(self, message: Message, *, exclude: Agent | None = None) -> None:
        for agent in self.agents:
            if agent is not exclude:
                await agent.observe(message)


class OnboardingWorld(World):
    """A one-agent world that screens a worker. Set `self.passed` before `run()` returns."""

    passed: bool | None = None

    def __init__(self, agents: list[Agent], context: Any = None, *, saver: Saver | None = None) -> None:
        super().__init__(agents, context, saver=saver)
        self.passed = None

    @property
    def worker(self) -> Agent:
        return self.agents[0]


BotFactory = Callable[[str], Agent | Any]
WorldT = TypeVar("WorldT", bound=World)


@dataclass(frozen=True)
class Timeouts:
    """Every wait has a bound (seconds).

    turn: an `act()` called without a timeout (a worker's or a bot's); waiting: the waiting room;
    onboarding: the whole onboarding world; reconnect_grace: a live worker without a socket;
    submission: a worker whose work is over (done, partner left, ...) and who has not submitted: the agent
    then expires and the page says so.
    """

    turn: float = 300.0
    waiting: float = 300.0
    onboarding: float = 600.0
    reconnect_grace: float = 30.0
    submission: float = 600.0

    def __post_init__(self) -> None:
        for name in ("turn", "waiting", "onboarding", "reconnect_grace", "submission"):
            check_timeout(getattr(self, name), f"Timeouts.{name}")


def check_timeout(seconds: float, what: str) -> float:
    """`seconds` if it is a bound (a finite number above 0), else ValueError naming `what`."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be a number of seconds above 0, got {seconds!r}: every wait needs a bound")
    return float(seconds)


@dataclass(frozen=True)
class Caps:
    """Limits enforced before a worker is kept waiting."""

    max_conversations: int = 50
    max_waiting: int = 100
    per_worker_concurrent: int = 1
    per_worker_total: int = 10
    onboarding_attempts: int = 1
    bot_concurrency: int = 8
    target_conversations: int = 100


@dataclass(frozen=True)
class GoldPolicy:
    """What a task's gold checks (`World.gold(agent, passed)`, in onboarding or mixed into the work) do.

    A worker's score is the percent of their gold checks passed in the run, acted on once they have
    `min_checks`. `qualification`: the name of a qualification type (created on the account) whose value
    Parley keeps at each worker's score on MTurk, to require in other runs (`--qualification`).
    `soft_block_below`: soft-block a worker whose score is below this percent (MTurk then hides Parley's
    HITs from them; `parley unblock` lifts it). `flag_for_rejection`: mark the worker's work in a
    conversation with a failed check, on the dashboard and in `parley review`, for the requester to reject.
    """

    qualification: str = ""
    soft_block_below: int = 0
    flag_for_rejection: bool = False
    min_checks: int = 1


@dataclass(frozen=True)
class Qualifications:
    """Who may see and accept a task's HITs; Parley pushes these to MTurk as QualificationRequirements, so a
    worker who does not qualify never accepts (docs/mturk.md, "Qualifications").

    `locales`: countries ("US") or country-subdivisions ("US-CA"); None keeps Parley's default (US, on live
    MTurk only). `min_approval_rate`: percent of approved assignments; None keeps the default (95, live
    only). `min_approved_hits`: at least this many approved HITs. `masters`: MTurk Masters only.
    `allow_list`: worker ids; only they see the HITs (Parley grants them a qualification of the run).
    `block_list`: worker ids who never see them. `custom`: requirements in MTurk's own shape, e.g.
    `{"QualificationTypeId": "3X...", "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [80]}`.
    """

    locales: tuple[str, ...] | None = None
    min_approval_rate: int | None = None
    min_approved_hits: int = 0
    masters: bool = False
    allow_list: tuple[str, ...] = ()
    block_list: tuple[str, ...] = ()
    custom: tuple[Mapping[str, Any], ...] = ()


def worker_ids(path: str | Path) -> tuple[str, ...]:
    """Worker ids from a file: one a line (or comma-separated); blank lines and `#` comments skipped."""
    path = Path(path)
    ids: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for part in line.split("#", 1)[0].split(","):
            worker = part.strip()
            if not worker:
                continue
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", worker):
                raise ValueError(f"{path}:{lineno}: {worker!r} is not a worker id (letters and digits)")
            ids.append(worker)
    return tuple(dict.fromkeys(ids))


@dataclass
class Task:
    """A task declaration: the one thing a task module exports (as `task`, or `make_task(**options)`).

    `world_options` and `onboarding_options` set class attributes the world (or onboarding world) declares,
    on each new world: `Task(world=ChatWorld, world_options={"turns_each": 2})` instead of a subclass.
    """

    name: str
    title: str
    description: str
    world: type[World]
    roles: list[str]
    bots: dict[str, BotFactory] = field(default_factory=dict)
    onboarding: type[OnboardingWorld] | None = None
    contexts: Iterable[Any] | None = None
    reward: float = 0.5
    keywords: list[str] = field(default_factory=lambda: ["chat", "dialogue"])
    timeouts: Timeouts = field(default_factory=Timeouts)
    caps: Caps = field(default_factory=Caps)
    ui: Mapping[str, str | Path] = field(default_factory=dict)  # role -> its page fragment (.html), see fragment()
    qualifications: Qualifications = field(default_factory=Qualifications)
    gold: GoldPolicy | None = None  # what failing the world's gold checks does (see World.gold)
    assets: str | Path | None = None  # a folder served read-only at /task/<run>/assets/ (see image())
    preview: Callable[[Any], Message | None] | None = None  # context -> what a previewing worker may see
    hit_lifetime_s: int = 0  # how long a HIT stays findable before Parley renews it; 0: the server's default
    assignment_duration_s: int = 3600  # how long a worker has, once they accept, to submit
    # The pairing tells each worker their role; False keeps the partners' roles from them (e.g. a study of
    # how people treat a partner they cannot place).
    reveal_partner_roles: bool = True
    world_options: Mapping[str, Any] = field(default_factory=dict)
    onboarding_options: Mapping[str, Any] = field(default_factory=dict)
    # The world may be replayed after a restart to continue its conversation (docs/authoring.md, "Replayable
    # worlds": no clock, no network outside a bot, no state outside the world, randomness from `self.random`).
    # False: a restart closes the conversation and its workers submit what they did.
    replayable: bool = False

    def __post_init__(self) -> None:
        _check_options(self.name, self.world, self.world_options, "world_options")
        if self.onboarding is not None:
            _check_options(self.name, self.onboarding, self.onboarding_options, "onboarding_options")
        elif self.onboarding_options:
            raise ValueError(f"task {self.name!r}: onboarding_options without an onboarding world")
        if not self.roles:
            raise ValueError(f"task {self.name!r} declares no human roles")
        overlap = set(self.roles) & set(self.bots)
        if overlap:
            raise ValueError(f"task {self.name!r}: roles {sorted(overlap)} are both human and bot")
        if len(set(self.roles)) != len(self.roles):
            raise ValueError(f"task {self.name!r}: role names must be unique")
        unknown = set(self.ui) - set(self.roles)
        if unknown:
            raise ValueError(f"task {self.name!r}: ui names {sorted(unknown)}, which are not human roles")
        self._ui = {role: load_fragment(path) for role, path in self.ui.items()}
        self._contexts: list[Any] | None = None
        if self.assets is not None and not Path(self.assets).is_dir():
            raise ValueError(f"task {self.name!r}: assets {str(self.assets)!r} is not a folder")

    @property
    def assets_dir(self) -> Path | None:
        return Path(self.assets) if self.assets is not None else None

    def preview_message(self) -> Message | None:
        """What a worker previewing the HIT sees in the task pane: `preview(first context)`, when declared."""
        if self.preview is None:
            return None
        return self.preview(self.context_for(0))

    def build_world(
        self, agents: list[Agent], context: Any, *, saver: Saver | None = None, seed: str | None = None
    ) -> World:
        """A new world for one conversation, with this task's `world_options` set on it and its `random`
        seeded with `seed` (the same seed, the same choices)."""
        token = _SEED.set(seed)
        try:
            world = self.world(agents, context, saver=saver)
        finally:
            _SEED.reset(token)
        return _with_options(world, self.world_options)

    def build_onboarding(self, worker: Agent, *, saver: Saver | None = None) -> OnboardingWorld:
        """A new onboarding world for one worker, with `onboarding_options` set on it."""
        if self.onboarding is None:
            raise ValueError(f"task {self.name!r} has no onboarding world")
        return _with_options(self.onboarding([worker], None, saver=saver), self.onboarding_options)

    def ui_for(self, role: str) -> RoleUI | None:
        """The page fragment this task declared for `role` (read and checked when the task was built)."""
        return self._ui.get(role)

    def load_contexts(self) -> None:
        """Read the whole context source now, so a malformed file fails at start, naming its line."""
        if self._contexts is None:
            self._contexts = list(self.contexts) if self.contexts is not None else []

    def context_for(self, index: int) -> Any:
        """The context of the index-th conversation, cycling through the source."""
        self.load_contexts()
        assert self._contexts is not None
        if not self._contexts:
            return None
        return self._contexts[index % len(self._contexts)]


def _check_options(task: str, cls: type[World], options: Mapping[str, Any], what: str) -> None:
    """Each option must name a plain class attribute `cls` declares: a typo fails when the task is built."""
    plain = sorted(n for n in dir(cls) if _is_plain_attribute(cls, n))
    for name in options:
        if name not in plain:
            raise ValueError(
                f"task {task!r}: {what} names {name!r}, which {cls.__name__} does not declare as a class "
                f"attribute (it declares: {', '.join(plain) or 'none'})"
            )


def _is_plain_attribute(cls: type[World], name: str) -> bool:
    declared = inspect.getattr_static(cls, name)
    return not name.startswith("_") and not callable(declared) and not isinstance(
        declared, property | classmethod | staticmethod
    )


def _with_options(world: WorldT, options: Mapping[str, Any]) -> WorldT:
    for name, value in options.items():
        setattr(world, name, value)
    return world


class FragmentError(ValueError):
    """A role's page fragment cannot be served; the message names the file and what to change."""


@dataclass(frozen=True)
class RoleUI:
    """One role's page fragment: HTML (no scripts, no inline styles) and the optional stylesheet beside it."""

    html: str
    css: str | None = None


# Fragments are HTML and CSS only: the page wires their fields, and its CSP would block these anyway.
_FRAGMENT_REFUSALS = [
    (re.compile(r"<\s*(script|iframe|object|embed|base|meta|link)\b", re.I), "a <{0}> element"),
    (re.compile(r"<\s*style\b", re.I), "a <style> element (put the CSS in a .css file of the same name)"),
    (re.compile(r"<[^>]*\sstyle\s*=", re.I), "a style attribute (put the CSS in a .css file of the same name)"),
    (re.compile(r"<[^>]*\s(on[a-z]+)\s*=", re.I), "an inline event handler ({0}=)"),
    (re.compile(r"javascript\s*:", re.I), "a javascript: URL"),
]


def load_fragment(path: str | Path) -> RoleUI:
    """Read a role's fragment (`name.html`, and `name.css` beside it when present), refusing what the page
    cannot run safely, with the file and the reason."""
    path = Path(path)
    if path.suffix.lower() != ".html":
        raise FragmentError(f"{path}: a page fragment must be an .html file")
    try:
        html = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FragmentError(f"{path}: cannot read the page fragment ({exc.strerror or exc})") from exc
    for pattern, reason in _FRAGMENT_REFUSALS:
        found = pattern.search(html)
        if found:
            line = html.count("\n", 0, found.start()) + 1
            what = reason.format(*found.groups())
            raise FragmentError(f"{path}:{line}: a page fragment may not contain {what}")
    css_path = path.with_suffix(".css")
    css = css_path.read_text(encoding="utf-8") if css_path.is_file() else None
    return RoleUI(html=html, css=css)


class ContextFileError(ValueError):
    """A context file could not be read; the message names the file and line."""


def jsonl_contexts(path: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ContextFileError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(item, dict):
                raise ContextFileError(f"{path}:{lineno}: each line must be a JSON object")
            yield item


def csv_contexts(path: str | Path) -> Iterator[dict[str, str]]:
    path = Path(path)
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        width = len(reader.fieldnames or [])
        for row in reader:
            if None in row or len(row) != width or any(v is None for v in row.values()):
                raise ContextFileError(f"{path}:{reader.line_num}: expected {width} columns")
            yield dict(row)

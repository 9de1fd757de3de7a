"""The list totals' counters (task_counts, kept by a trigger) never drift from the rows they count.

Random sequences of everything that moves a task between counters: creates, updates of status, group
and assignee (alone and concurrently), position moves, deletes, a member leaving the project (ON DELETE
SET NULL unassigns), a task group deleted with its tasks. After each sequence every filter combination's
counter sum equals count(*) over the rows, and the API's totals say the same.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import asyncpg
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.api.tasks import STATUSES
from tests.conftest import Project, make_project

GROUPS = 3
MEMBERS = 3

_pick = st.integers(min_value=0, max_value=10_000)
_status = st.sampled_from(STATUSES)
_assignee = st.integers(min_value=-1, max_value=MEMBERS - 1)  # -1: unassigned
_ops = st.one_of(
    st.tuples(st.just("create"), _pick, _status, _assignee),
    st.tuples(st.just("update"), _pick, st.none() | _status, st.none() | _pick, st.none() | _assignee,
              st.none() | st.integers(min_value=1, max_value=5)),
    st.tuples(st.just("concurrent"), _pick, st.lists(st.tuples(_status, _assignee, _pick), min_size=2,
                                                    max_size=4)),
    st.tuples(st.just("delete"), _pick),
    st.tuples(st.just("leave"), _pick),
    st.tuples(st.just("rejoin"), _pick),
    st.tuples(st.just("delete_group"), _pick),
    st.tuples(st.just("add_group"),),
)


class World:
    """A project and what the sequence may name: its groups, its members, its tasks."""

    def __init__(self, pool: asyncpg.Pool, client: httpx.AsyncClient, project: Project,
                 groups: list[int], members: list[int]) -> None:
        self.pool, self.client, self.project = pool, client, project
        self.groups, self.members = groups, members

    async def tasks(self) -> list[int]:
        rows = await self.pool.fetch("SELECT id FROM tasks WHERE project_id = $1 ORDER BY id",
                                     self.project.id)
        return [r["id"] for r in rows]

    def assignee(self, index: int) -> int | None:
        return None if index < 0 else self.members[index]

    async def create(self, group: int, status: str, assignee: int) -> None:
        await self.client.post("/api/v1/tasks", headers=self.project.headers, json={
            "title": "T", "task_group_id": self.groups[group % len(self.groups)], "status": status,
            "assigned_to": self.assignee(assignee)})

    async def update(self, task: int, body: dict[str, Any]) -> None:
        ids = await self.tasks()
        if ids:
            await self.client.put(f"/api/v1/tasks/{ids[task % len(ids)]}", headers=self.project.headers,
                                  json=body)

    async def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "create":
            await self.create(*op[1:])
        elif kind == "update":
            _, task, status, group, assignee, position = op
            body: dict[str, Any] = {}
            if status is not None:
                body["status"] = status
            if group is not None:
                body["task_group_id"] = self.groups[group % len(self.groups)]
            if assignee is not None:
                body["assigned_to"] = self.assignee(assignee)
            if position is not None:
                body["position"] = position
            await self.update(task, body)
        elif kind == "concurrent":
            _, task, changes = op
            await asyncio.gather(*(
                self.update(task + i % 2, {"status": s, "assigned_to": self.assignee(a),
                                           "task_group_id": self.groups[g % len(self.groups)]})
                for i, (s, a, g) in enumerate(changes)))
        elif kind == "delete":
            ids = await self.tasks()
            if ids:
                await self.client.delete(f"/api/v1/tasks/{ids[op[1] % len(ids)]}",
                                         headers=self.project.headers)
        elif kind == "leave":
            await self.pool.execute("DELETE FROM memberships WHERE project_id = $1 AND user_id = $2",
                                    self.project.id, self.members[op[1] % MEMBERS])
        elif kind == "rejoin":
            await self.pool.execute(
                "INSERT INTO memberships (project_id, user_id, role) VALUES ($1, $2, 'team_member') "
                "ON CONFLICT DO NOTHING", self.project.id, self.members[op[1] % MEMBERS])
        elif kind == "delete_group" and len(self.groups) > 1:
            group = self.groups.pop(op[1] % len(self.groups))
            await self.pool.execute("DELETE FROM task_groups WHERE id = $1", group)
        elif kind == "add_group":
            self.groups.append(await self.pool.fetchval(
                "INSERT INTO task_groups (project_id, name, position) VALUES ($1, 'G', 99) RETURNING id",
                self.project.id))


async def _world(pool: asyncpg.Pool, client: httpx.AsyncClient) -> World:
    project = await make_project(pool, groups=GROUPS, rate_limit=100_000)  # never limited
    groups = [r["id"] for r in await pool.fetch(
        "SELECT id FROM task_groups WHERE project_id = $1 ORDER BY id", project.id)]
    members = []
    for i in range(MEMBERS):
        user = await pool.fetchval("INSERT INTO users (email, name) VALUES ($1, 'M') RETURNING id",
                                   f"m{i}-{project.slug}@example.com")
        await pool.execute(
            "INSERT INTO memberships (project_id, user_id, role) VALUES ($1, $2, 'team_member')",
            project.id, user)
        members.append(user)
    return World(pool, client, project, groups, members)


async def _assert_counters_match_rows(world: World) -> None:
    pid = world.project.id
    rows = Counter((r["task_group_id"], r["status"], r["assigned_to"] or 0) for r in await world.pool.fetch(
        "SELECT task_group_id, status::text, assigned_to FROM tasks WHERE project_id = $1", pid))
    counters = {(r["task_group_id"], r["status"], r["assignee_key"]): r["n"] for r in await world.pool.fetch(
        "SELECT task_group_id, status::text, assignee_key, n FROM task_counts WHERE project_id = $1", pid)}
    assert all(n >= 0 for n in counters.values())
    groups = {k[0] for k in [*rows, *counters]}
    assignees = {k[2] for k in [*rows, *counters]}
    for g, s, a in itertools.product([None, *groups], [None, *STATUSES], [None, *assignees]):
        def match(key: tuple[int, str, int], g=g, s=s, a=a) -> bool:  # type: ignore[no-untyped-def]
            return (g is None or key[0] == g) and (s is None or key[1] == s) and (a is None or key[2] == a)
        counted = sum(n for k, n in rows.items() if match(k))
        assert sum(n for k, n in counters.items() if match(k)) == counted, (g, s, a)

    # and what users see: the API's totals, unfiltered and for each single filter
    queries = ["", *(f"task_group_id={g}" for g in groups), *(f"status={s}" for s in STATUSES),
               *(f"assigned_to={a}" for a in assignees if a)]
    for q in queries:
        r = await world.client.get(f"/api/v1/tasks?{q}", headers=world.project.headers)
        key, _, value = q.partition("=")
        expected = sum(n for k, n in rows.items()
                       if (key != "task_group_id" or k[0] == int(value))
                       and (key != "status" or k[1] == value)
                       and (key != "assigned_to" or k[2] == int(value)))
        assert r.json()["meta"]["total"] == expected, q


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_ops, min_size=5, max_size=30))
async def test_counters_never_drift(app, pool, ops: list[tuple[Any, ...]]) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        world = await _world(pool, client)
        for _ in range(6):  # a starting population for the updates, moves and deletes to act on
            await world.create(_, STATUSES[_ % 4], _ % (MEMBERS + 1) - 1)
        for op in ops:
            await world.apply(op)
        await _assert_counters_match_rows(world)

"""Drives Factory's MCP server with the official MCP Python SDK (`mcp` 2.x) as an agent would.

Over stdio (`factory mcp`) or streamable HTTP (`/mcp` with a Bearer token): lists the tools
and templates, is refused for bad input, starts a run with wait=true (progress notifications
arrive; the call returns when the run waits for a person), subscribes to the run, decides its
approvals until it finishes, reads an artifact and a diff as tools and as resources, pages
through the run's audit trail and verifies the chain. With --viewer-token it also checks that
a viewer may read but not start or decide.

Protocol-level expectations are asserted here; what must match the server's own records is
printed as one JSON object on stdout for the Rust test (server/tests/api/mcp.rs) to compare
with the store, the REST API and the files on disk.
"""

import argparse
import json
import os
import sys
import warnings

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

EXPECTED_TOOLS = {
    "start_run", "get_run", "list_runs", "cancel_run", "list_approvals", "decide_approval",
    "answer_clarification", "search_memory", "get_events", "verify_audit", "list_teams",
    "list_projects", "get_artifact", "get_diff",
}
REQUIREMENT = "As a shop owner, I want to export orders as CSV and email the weekly report to accountants."

# resources/subscribe is the handshake-era way; it is deprecated (not gone) in the SDK.
warnings.simplefilter("ignore")


def text_of(result):
    return "".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def check(condition, what):
    if not condition:
        raise AssertionError(what)


class Seen:
    """What arrived outside the calls: resource updates (either way of subscribing)."""

    def __init__(self):
        self.updated = []

    async def on_message(self, message):
        if isinstance(message, types.ResourceUpdatedNotification):
            self.updated.append(message.params.uri)
        elif isinstance(message, Exception):
            print(f"client: transport error: {message!r}", file=sys.stderr)


def client_for(args, seen, *, token=None, mode="auto", http=None):
    if args.transport == "stdio":
        params = StdioServerParameters(
            command=args.factory,
            args=["--data-dir", args.data_dir, "mcp"],
            # Offline: only the built-in template provider answers.
            env={"OLLAMA_HOST": "http://127.0.0.1:9", "RUST_LOG": "warn"},
        )
        return Client(params, mode=mode, message_handler=seen.on_message)
    return Client(
        streamable_http_client(args.url, http_client=http),
        mode=mode,
        message_handler=seen.on_message,
        read_timeout_seconds=300,
    )


def http_client(token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300))


async def call(client, name, arguments, progress=None):
    result = await client.call_tool(name, arguments, progress_callback=progress)
    check(not result.is_error, f"{name} {arguments}: {text_of(result)}")
    return result.structured_content


async def refused(client, name, arguments, *needles):
    result = await client.call_tool(name, arguments)
    message = text_of(result)
    check(result.is_error, f"{name} {arguments} was not refused: {message}")
    for needle in needles:
        check(needle in message, f"{name}: {needle!r} not in {message!r}")
    return message


async def decide_until_finished(client, report, progress):
    """Approves what the run waits for (plan, then review) until it finishes."""
    decided = []
    for _ in range(6):
        status = report["run"]["status"]
        if status in ("succeeded", "failed", "canceled"):
            return report, decided
        check(status == "waiting_for_human", f"the wait returned a run still {status}: {report}")
        check(report["wait"] == "waiting_for_human", report["wait"])
        approval = report["pending_approvals"][0]
        check("decide_approval" in report["next"], report["next"])
        if approval["kind"] == "plan":
            # A plan is not a question: answer_clarification says so and names the tool to use.
            await refused(client, "answer_clarification",
                          {"run_id": report["run"]["id"], "answer": "CSV"},
                          "no question waiting", "decide_approval")
        out = await call(client, "decide_approval", {
            "approval_id": approval["id"], "option": "approve", "wait": True, "timeout_secs": 240,
        }, progress)
        check(out["approval"]["status"] == "decided", out["approval"])
        check(out["approval"]["decision"]["option"] == "approve", out["approval"])
        decided.append(approval["kind"])
        report = out["report"]
    raise AssertionError(f"the run never finished: {report}")


async def scenario(client, args, seen):
    tools = await client.list_tools()
    names = {t.name for t in tools.tools}
    check(EXPECTED_TOOLS <= names, f"missing tools: {EXPECTED_TOOLS - names}")
    for tool in tools.tools:
        check(tool.input_schema.get("type") == "object", f"{tool.name}: {tool.input_schema}")
    start_schema = next(t for t in tools.tools if t.name == "start_run").input_schema
    check({"goal", "project", "wait", "timeout_secs"} <= set(start_schema["properties"]), start_schema)
    templates = await client.list_resource_templates()
    uris = {t.uri_template for t in templates.resource_templates}
    check("factory://runs/{run_id}/diffs/{work_order_id}" in uris, uris)

    # Bad input names what was wrong and what is accepted.
    unknown = await refused(client, "get_run", {"run_id": "no-such-run"}, "no-such-run")
    await refused(client, "start_run", {"goal": REQUIREMENT, "colour": "red"}, "colour", "goal")
    await refused(client, "start_run", {"goal": REQUIREMENT, "wait": True, "timeout_secs": 999999},
                  "timeout_secs", "1800")
    await refused(client, "list_runs", {"status": "sleeping"}, "waiting_for_human")

    progress = []

    async def on_progress(value, total, message):
        progress.append({"progress": value, "message": message})

    started = await call(client, "start_run", {
        "goal": REQUIREMENT, "project": args.project, "wait": True, "timeout_secs": 240,
    }, on_progress)
    run_id = started["run_id"]
    check(started["created"] is True, started)
    first_report = started["report"]
    check(first_report["wait"] == "waiting_for_human", first_report)
    check(first_report["pending_approvals"], first_report)
    # The SDK hands notifications to callbacks on its own tasks: let the last ones land.
    await anyio.sleep(0.5)
    check(any("stage 1" in (p["message"] or "") for p in progress), progress)
    values = [p["progress"] for p in progress]
    check(values == sorted(values) and len(set(values)) == len(values), values)
    progress_before_decisions = len(progress)

    run_uri = f"factory://runs/{run_id}"
    if client.protocol_version >= "2026-07-28":
        # 2026-07-28: subscriptions/listen carries the updates.
        async with client.listen(resource_subscriptions=[run_uri]) as sub:
            check(run_uri in (sub.honored.resource_subscriptions or []), sub.honored)

            async def collect():
                async for event in sub:
                    seen.updated.append(event.uri)

            async with anyio.create_task_group() as tg:
                tg.start_soon(collect)
                final, decided = await decide_until_finished(client, first_report, on_progress)
                with anyio.move_on_after(5):
                    while run_uri not in seen.updated:
                        await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
        subscribed = "subscriptions/listen"
    else:
        await client.session.subscribe_resource(run_uri)
        final, decided = await decide_until_finished(client, first_report, on_progress)
        with anyio.move_on_after(5):
            while run_uri not in seen.updated:
                await anyio.sleep(0.05)
        subscribed = "resources/subscribe"
    check(run_uri in seen.updated, f"no update for {run_uri}: {seen.updated}")
    check(final["run"]["status"] == "succeeded", final)
    check(final["wait"] == "finished", final)
    check(len(progress) > progress_before_decisions, "no progress while deciding")

    # An artifact, as a tool and as a resource.
    got = await call(client, "get_run", {"run_id": run_id})
    artifacts = got["run"]["artifacts"]
    check(artifacts, got)
    artifact = artifacts[0]
    name = artifact["path"].removeprefix(f"runs/{run_id}/")
    as_tool = await client.call_tool("get_artifact", {"run_id": run_id, "name": name})
    check(not as_tool.is_error, text_of(as_tool))
    check(as_tool.structured_content["uri"] == f"{run_uri}/artifacts/{name}", as_tool.structured_content)
    as_resource = await client.read_resource(f"{run_uri}/artifacts/{name}")
    check(as_resource.contents[0].text == text_of(as_tool), "tool and resource differ")
    await refused(client, "get_artifact", {"run_id": run_id, "name": "nothing.md"},
                  "nothing.md", name)
    listed = await client.list_resources()
    listed_uris = {r.uri for r in listed.resources}
    check(f"{run_uri}/artifacts/{name}" in listed_uris and run_uri in listed_uris, listed_uris)

    # A delivered work order's diff, both ways.
    delivered = [w for w in got["run"]["work_orders"] if w["status"] == "delivered"]
    check(delivered, got["run"]["work_orders"])
    work_order = delivered[0]
    diff = await client.call_tool("get_diff", {"run_id": run_id, "work_order_id": work_order["id"]})
    check(not diff.is_error, text_of(diff))
    diff_resource = await client.read_resource(f"{run_uri}/diffs/{work_order['id']}")
    check(diff_resource.contents[0].text == text_of(diff), "diff tool and resource differ")
    await refused(client, "get_diff", {"run_id": run_id, "work_order_id": "wo-404"}, "wo-404")

    # The audit trail, a page at a time, and its chain.
    events, after = [], 0
    while True:
        page = await call(client, "get_events", {"run_id": run_id, "after": after, "limit": 7})
        if not page["events"]:
            break
        seqs = [e["seq"] for e in page["events"]]
        check(seqs == sorted(seqs) and seqs[0] > after, seqs)
        check(page["next_after"] == seqs[-1], page["next_after"])
        events.extend(page["events"])
        after = page["next_after"]
    await refused(client, "get_events", {"limit": 5000}, "limit", "1000")
    chain = await call(client, "verify_audit", {})
    check(chain["intact"] is True and chain["broken"] is None, chain)

    runs = await call(client, "list_runs", {"status": "succeeded"})
    check(run_id in {r["id"] for r in runs["runs"]}, runs)
    approvals = await call(client, "list_approvals", {"status": "decided", "run_id": run_id})
    check(len(approvals["approvals"]) == len(decided), approvals)
    teams = await call(client, "list_teams", {})
    check(len(teams["teams"]) >= 5, "teams")
    projects = await call(client, "list_projects", {})
    await call(client, "search_memory", {"q": "orders CSV"})

    return {
        "transport": args.transport,
        "protocol_version": client.protocol_version,
        "subscribed_with": subscribed,
        "run_id": run_id,
        "unknown_run_error": unknown,
        "progress": progress,
        "decided": decided,
        "updated": seen.updated,
        "artifact": {"path": artifact["path"], "name": name, "text": text_of(as_tool),
                     "bytes": artifact["bytes"]},
        "work_order": work_order,
        "diff": text_of(diff),
        "events": [{"seq": e["seq"], "kind": e["kind"]} for e in events],
        "chain": chain,
        "projects": [p["path"] for p in projects["projects"]],
    }


async def viewer_checks(args, run_id):
    """A viewer token may read over MCP, but not start or decide (and no token gets nowhere)."""
    out = {}
    async with http_client(args.viewer_token) as http:
        async with client_for(args, Seen(), http=http) as viewer:
            out["viewer_protocol"] = viewer.protocol_version
            got = await call(viewer, "get_run", {"run_id": run_id})
            check(got["run"]["id"] == run_id, got)
            out["viewer_start"] = await refused(viewer, "start_run", {"goal": REQUIREMENT},
                                                "`operator`", "`viewer`")
            out["viewer_cancel"] = await refused(viewer, "cancel_run", {"run_id": run_id},
                                                 "`operator`")
    try:
        async with http_client(None) as http:
            async with client_for(args, Seen(), http=http) as anonymous:
                await anonymous.list_tools()
        out["anonymous"] = "connected"
    except BaseException as error:  # the SDK raises the HTTP failure, possibly in a group
        out["anonymous"] = repr(error)
    return out


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["stdio", "http"], required=True)
    parser.add_argument("--mode", default="auto", help="auto (2026-07-28 when offered) or legacy")
    parser.add_argument("--factory", help="the factory binary (stdio)")
    parser.add_argument("--data-dir", help="its data directory (stdio)")
    parser.add_argument("--url", help="the /mcp endpoint (http)")
    parser.add_argument("--token", help="an operator's or admin's token (http)")
    parser.add_argument("--viewer-token", help="a viewer's token (http)")
    parser.add_argument("--project", required=True, help="the project to run in")
    args = parser.parse_args()

    seen = Seen()
    if args.transport == "stdio":
        async with client_for(args, seen, mode=args.mode) as client:
            report = await scenario(client, args, seen)
    else:
        async with http_client(args.token) as http:
            async with client_for(args, seen, mode=args.mode, http=http) as client:
                report = await scenario(client, args, seen)
        if args.viewer_token:
            report.update(await viewer_checks(args, report["run_id"]))
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    anyio.run(main)

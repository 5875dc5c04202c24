"""Drive Agenthost's MCP server with the official MCP Python SDK (PyPI `mcp`).

usage: mcp_client.py URL MEMBER_KEY VIEWER_KEY MODE AGENT_TOOL
MODE is `auto` (the SDK's default: `server/discover`, i.e. the stateless 2026-07-28
protocol) or `legacy` (the `initialize` handshake and an `Mcp-Session-Id` session).

Prints one JSON object of what it saw; tests/tests/e2e/mcp.rs asserts on it. Nothing is
judged here, so a failure shows the whole observation.
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError


class HeaderLog:
    """What went over the wire: request protocol versions and response session ids."""

    def __init__(self):
        self.protocol_versions = set()
        self.session_ids = set()
        self.methods = []
        self.statuses = []
        self.challenges = set()

    async def on_request(self, request):
        version = request.headers.get("mcp-protocol-version")
        if version:
            self.protocol_versions.add(version)
        if request.method == "POST":
            try:
                self.methods.append(json.loads(request.content).get("method"))
            except (ValueError, AttributeError):
                pass

    async def on_response(self, response):
        session = response.headers.get("mcp-session-id")
        if session:
            self.session_ids.add(session)
        self.statuses.append(response.status_code)
        challenge = response.headers.get("www-authenticate")
        if challenge:
            self.challenges.add(challenge)


def connect(url, key, mode, log):
    headers = {"Authorization": f"Bearer {key}"} if key else None
    http = create_mcp_http_client(headers=headers)
    http.event_hooks = {"request": [log.on_request], "response": [log.on_response]}
    return Client(streamable_http_client(url, http_client=http), mode=mode)


def text_of(result):
    return [block.text for block in result.content if getattr(block, "type", None) == "text"]


def outcome(result):
    return {
        "is_error": result.is_error,
        "structured": result.structured_content,
        "text": text_of(result),
    }


async def protocol_error(client, name, arguments):
    try:
        result = await client.call_tool(name, arguments)
    except MCPError as err:
        return {"code": err.code, "message": err.message}
    return {"unexpected_result": outcome(result)}


async def as_member(url, key, mode, agent_tool):
    log = HeaderLog()
    async with connect(url, key, mode, log) as client:
        listed = await client.list_tools()
        tools = {
            tool.name: {
                "description": tool.description,
                "input_schema": tool.input_schema,
                "output_schema": tool.output_schema,
            }
            for tool in listed.tools
        }
        greet = await client.call_tool("hello__greet", {"name": "Ada"})
        failing = await client.call_tool("faults__secret", {"name": "api_key"})
        invalid = await client.call_tool("hello__greet", {"name": ""})
        agent = await client.call_tool(agent_tool, {"message": "Greet Ada, please."})
        unknown = await protocol_error(client, "nope__nothing", {})
        return {
            "protocol_version": client.protocol_version,
            "server_name": client.server_info.name if client.server_info else None,
            "tools": tools,
            "greet": outcome(greet),
            "failing": outcome(failing),
            "invalid": outcome(invalid),
            "agent": outcome(agent),
            "unknown": unknown,
            "wire": {
                "protocol_versions": sorted(log.protocol_versions),
                "session_ids": len(log.session_ids),
                "methods": log.methods,
            },
        }


async def as_viewer(url, key, mode):
    async with connect(url, key, mode, HeaderLog()) as client:
        listed = await client.list_tools()
        refused = await protocol_error(client, "hello__greet", {"name": "Ada"})
        return {"listed": len(listed.tools), "call": refused}


async def without_key(url, mode):
    log = HeaderLog()
    seen = lambda: {"statuses": log.statuses, "challenges": sorted(log.challenges)}
    try:
        async with connect(url, None, mode, log) as client:
            await client.list_tools()
    except Exception as err:  # the SDK gives no HTTP status, the log has it
        return {"refused": True, "error": describe(err), **seen()}
    return {"refused": False, **seen()}


def describe(err):
    if isinstance(err, BaseExceptionGroup):
        return " | ".join(describe(inner) for inner in err.exceptions)
    if isinstance(err, httpx2.HTTPStatusError):
        return f"HTTP {err.response.status_code}"
    return f"{type(err).__name__}: {err}"


async def main():
    url, member, viewer, mode, agent_tool = sys.argv[1:6]
    report = {
        "member": await as_member(url, member, mode, agent_tool),
        "viewer": await as_viewer(url, viewer, mode),
        "anonymous": await without_key(url, mode),
    }
    print(json.dumps(report))


asyncio.run(main())

"""pyhello: the example tool plugin written in Python, built with componentize-py.

Three tools: `greet` (the Python twin of the Rust `hello` plugin: a greeting from the
`greeting` setting, a log line through the host's `log` import), `word_count` (JSON in,
JSON out, plain Python) and `fetch` (a GET through the standard
`wasi:http/outgoing-handler`, which only reaches origins the plugin is granted). Build: `make plugins`, or
`python3 scripts/build_python_plugin.py` (see docs/python-plugins.md).
"""

import json
import re
from collections import Counter
from urllib.parse import urlsplit

from wit_world import exports
from componentize_py_types import Err
from wit_world.imports import config, log, outgoing_handler, streams
from wit_world.imports import wasi_http_types as http
from wit_world.imports.agenthost_plugin_types import (
    CallContext,
    Error_Denied,
    Error_Internal,
    Error_Invalid,
    Error_NotFound,
    Error_Unavailable,
    ToolDescriptor,
)

# The most of a response body `fetch` returns.
FETCH_LIMIT = 4096
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")

TOOLS = [
    ToolDescriptor(
        name="greet",
        description="Greets a person by name (written in Python).",
        input_schema=json.dumps({
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1}},
            "required": ["name"],
            "additionalProperties": False,
        }),
        output_schema=json.dumps({
            "type": "object",
            "properties": {
                "greeting": {"type": "string"},
                "version": {"type": "string"},
                "language": {"type": "string"},
            },
            "required": ["greeting", "version", "language"],
        }),
    ),
    ToolDescriptor(
        name="word_count",
        description="Counts the words of a text and lists the most frequent ones.",
        input_schema=json.dumps({
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "top": {"type": "integer", "minimum": 1, "maximum": 20},
            },
            "required": ["text"],
            "additionalProperties": False,
        }),
        output_schema=json.dumps({
            "type": "object",
            "properties": {
                "words": {"type": "integer"},
                "unique": {"type": "integer"},
                "top": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "word": {"type": "string"},
                            "count": {"type": "integer"},
                        },
                        "required": ["word", "count"],
                    },
                },
            },
            "required": ["words", "unique", "top"],
        }),
    ),
    ToolDescriptor(
        name="fetch",
        description="GETs a URL (on a granted origin) and returns its status and text.",
        input_schema=json.dumps({
            "type": "object",
            "properties": {"url": {"type": "string"}},
            "required": ["url"],
            "additionalProperties": False,
        }),
        output_schema=json.dumps({
            "type": "object",
            "properties": {
                "status": {"type": "integer"},
                "body": {"type": "string"},
                "truncated": {"type": "boolean"},
            },
            "required": ["status", "body", "truncated"],
        }),
    ),
]


def greet(context: CallContext, args: dict) -> dict:
    name = args["name"].strip()
    if not name:
        # The schema admits "  "; the tool's own rule is that a name is not blank.
        raise Err(Error_Invalid("name must not be blank"))
    setting = config.get("greeting")
    greeting = json.loads(setting) if setting is not None else "Hello"
    if not isinstance(greeting, str):
        raise Err(Error_Invalid("setting greeting must be a string"))
    log.write(log.Level.INFO, f"greeting {name}", [log.Field("language", "python")])
    return {
        "greeting": f"{greeting}, {name}!",
        "version": context.version,
        "language": "python",
    }


def word_count(context: CallContext, args: dict) -> dict:
    words = [w.lower() for w in WORD.findall(args["text"])]
    counts = Counter(words)
    # Most frequent first, ties in alphabetical order, so the answer is deterministic.
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    top = [{"word": w, "count": c} for w, c in ranked[: args.get("top", 3)]]
    return {"words": len(words), "unique": len(counts), "top": top}


def http_failure(code) -> Err:
    """A wasi:http error code as our error: refusals by the grant are `denied`."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    if name in ("HttpRequestDenied", "DestinationIpProhibited"):
        return Err(Error_Denied(f"the host refused the request ({name})"))
    return Err(Error_Unavailable(f"the request failed ({name})"))


def fetch(context: CallContext, args: dict) -> dict:
    url = urlsplit(args["url"])
    if url.scheme not in ("http", "https") or not url.hostname:
        raise Err(Error_Invalid("url must be an absolute http or https URL"))
    request = http.OutgoingRequest(http.Fields())
    request.set_scheme(http.Scheme_Http() if url.scheme == "http" else http.Scheme_Https())
    request.set_authority(url.netloc)
    request.set_path_with_query((url.path or "/") + (f"?{url.query}" if url.query else ""))
    http.OutgoingBody.finish(request.body(), None)
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        raise http_failure(e.value)
    # Children before parents: wasi:http wants a stream dropped before its body, and
    # the body before its response; the `with` blocks drop them in that order.
    with future:
        with future.subscribe() as ready:
            ready.block()
        outcome = future.get().value
    if isinstance(outcome, Err):
        raise http_failure(outcome.value)
    body = bytearray()
    with outcome.value as response:
        status = response.status()
        with response.consume() as incoming:
            with incoming.stream() as stream:
                while len(body) <= FETCH_LIMIT:
                    try:
                        body += stream.blocking_read(FETCH_LIMIT + 1 - len(body))
                    except Err as e:
                        if isinstance(e.value, streams.StreamError_Closed):
                            break
                        raise Err(Error_Unavailable("the response body broke off"))
    return {
        "status": status,
        "body": body[:FETCH_LIMIT].decode("utf-8", errors="replace"),
        "truncated": len(body) > FETCH_LIMIT,
    }


HANDLERS = {"greet": greet, "word_count": word_count, "fetch": fetch}


class Tools(exports.Tools):
    def describe(self) -> list[ToolDescriptor]:
        return TOOLS

    def invoke(self, context: CallContext, tool: str, input: str) -> str:
        handler = HANDLERS.get(tool)
        if handler is None:
            raise Err(Error_NotFound(f"no tool named {tool}"))
        try:
            return json.dumps(handler(context, json.loads(input)))
        except Err:
            raise
        except Exception as e:  # A bug: report it as `internal` instead of trapping.
            raise Err(Error_Internal(f"{type(e).__name__}: {e}"))

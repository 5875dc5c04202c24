"""pyhello: the example tool plugin written in Python, built with componentize-py.

Two tools: `greet` (the Python twin of the Rust `hello` plugin: a greeting from the
`greeting` setting, a log line through the host's `log` import) and `word_count`
(JSON in, JSON out, plain Python). Build: `make plugins`, or
`python3 scripts/build_python_plugin.py` (see docs/python-plugins.md).
"""

import json
import re
from collections import Counter

from wit_world import exports
from componentize_py_types import Err
from wit_world.imports import config, log
from wit_world.imports.agenthost_plugin_types import (
    CallContext,
    Error_Internal,
    Error_Invalid,
    Error_NotFound,
    ToolDescriptor,
)

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
]


def greet(context: CallContext, args: dict) -> dict:
    name = args["name"].strip()
    if not name:
        # The schema admits "  "; the tool's own rule is that a name has a letter.
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


HANDLERS = {"greet": greet, "word_count": word_count}


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

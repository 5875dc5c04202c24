"""Verify captured webhook requests with the official `standardwebhooks` package, as a
receiver would. Run by tests/tests/e2e/outbound_webhooks.rs with PYTHONPATH set to the
pyclients directory.

stdin: {"secrets": ["whsec_..."], "requests": [{"headers": {...}, "body": "..."}]}
       (the body as received; our bodies are JSON, so UTF-8 text carries them exactly)
stdout: one result per request and secret, in order:
        [[{"ok": true, "payload": {...}} | {"ok": false, "error": "..."}, ...], ...]
"""
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main():
    job = json.load(sys.stdin)
    results = []
    for request in job["requests"]:
        body = request["body"].encode()
        per_secret = []
        for secret in job["secrets"]:
            try:
                payload = Webhook(secret).verify(body, request["headers"])
                per_secret.append({"ok": True, "payload": payload})
            except WebhookVerificationError as error:
                per_secret.append({"ok": False, "error": str(error)})
        results.append(per_secret)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Install Debian's nats-server, which the tests start to check that events reach
NATS JetStream (docs/automation.md, "NATS"). The host itself needs no NATS unless it
is run with --nats-url.

Debian 12's package (2.9.10) runs JetStream (`-js -sd <dir>`). The package also
enables a systemd unit; the tests start their own server on a free port, so a running
unit does no harm and a container without systemd needs none. Idempotent: an
installed nats-server is left alone.
"""
import os
import shutil
import subprocess
from pathlib import Path


def installed():
    for candidate in (shutil.which("nats-server"), "/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def main():
    found = installed()
    if not found:
        print("nats-server not found: installing Debian's nats-server", flush=True)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "update", "-q"], check=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "nats-server"], check=True, env=env)
        found = installed()
    version = subprocess.run([found, "--version"], check=True, capture_output=True, text=True)
    print(f"{found}: {version.stdout.strip()}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""An event socket (mod_event_socket, inbound) for the fleet benchmark: one process serves
every simulated PBX's `watch --events` connection (each arrives through that PBX's own sshd
as an SSH direct-tcpip channel), in the message shapes a real FreeSWITCH 1.10.12 sends
(src/freeswitch/esl.rs is tested on the same shapes; tests/it/real/live.rs on the real one).

  auth PASSWORD                          -> +OK accepted
  event plain CUSTOM sofia::gateway_state -> +OK event listener enabled plain
  api sofia xmlstatus gateway NAME       -> the gateway, REGED/UP

SIGUSR1: send --events events to every subscribed connection, each a state change
(FAIL_WAIT/DOWN, then REGED/UP, alternating), then write "sent N" to --status.
The status file always holds "subscribed N" before that.

Usage: bench/esl_sim.py --listen 127.0.0.1:18021 --status FILE [--events 10]
"""
import argparse
import asyncio
import signal

XML = """<?xml version="1.0" encoding="ISO-8859-1"?>
  <gateway>
    <name>{name}</name>
    <profile>external</profile>
    <ping>0</ping>
    <pingfreq>0</pingfreq>
    <pingcount>0</pingcount>
    <pingtime>0.00</pingtime>
    <state>REGED</state>
    <status>UP</status>
  </gateway>
"""


class Sim:
    def __init__(self, a):
        self.a = a
        self.subscribed = []
        self.sent = 0

    def status(self, text):
        with open(self.a.status, "w") as f:
            f.write(text + "\n")

    async def handle(self, reader, writer):
        writer.write(b"Content-Type: auth/request\n\n")
        gateway = "wavix"
        try:
            while True:
                lines = []
                while True:
                    line = await reader.readline()
                    if not line:
                        return
                    line = line.decode().rstrip("\r\n")
                    if line == "":
                        if lines:
                            break
                        continue
                    lines.append(line)
                cmd = lines[0]
                if cmd.startswith("auth "):
                    writer.write(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
                elif cmd.startswith("event "):
                    writer.write(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
                    self.subscribed.append((writer, gateway))
                    self.status(f"subscribed {len(self.subscribed)}")
                elif cmd.startswith("api sofia xmlstatus gateway "):
                    gateway = cmd.split()[-1]
                    body = XML.format(name=gateway).encode()
                    writer.write(b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body)
                else:
                    writer.write(b"Content-Type: command/reply\nReply-Text: -ERR command not found\n\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return

    async def fire(self):
        for k in range(self.a.events):
            state, ping = ("FAIL_WAIT", "DOWN") if k % 2 == 0 else ("REGED", "UP")
            for writer, gw in self.subscribed:
                body = (f"Event-Name: CUSTOM\nCore-UUID: sim\nEvent-Subclass: sofia%3A%3Agateway_state\n"
                        f"Gateway: {gw}\nState: {state}\nPing-Status: {ping}\n\n").encode()
                writer.write(b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body)
                self.sent += 1
            await asyncio.gather(*(w.drain() for w, _ in self.subscribed), return_exceptions=True)
        self.status(f"sent {self.sent}")

    async def main(self):
        host, port = self.a.listen.rsplit(":", 1)
        server = await asyncio.start_server(self.handle, host, int(port), backlog=4096)
        self.status("subscribed 0")
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(self.fire()))
        async with server:
            await server.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--status", required=True)
    ap.add_argument("--events", type=int, default=10)
    asyncio.run(Sim(ap.parse_args()).main())


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""An event socket (mod_event_socket, inbound) for the fleet benchmark: one process serves
every simulated PBX's `watch --events` connection (each arrives through that PBX's own sshd
as an SSH direct-tcpip channel), in the message shapes a real FreeSWITCH 1.10.12 sends
(src/freeswitch/esl.rs is tested on the same shapes; tests/it/real/live.rs on the real one).

  auth PASSWORD                          -> +OK accepted
  event plain CUSTOM sofia::gateway_state -> +OK event listener enabled plain
  api sofia xmlstatus gateway NAME       -> the gateway, REGED/UP

--mode makes every connection misbehave as a PBX whose `freeswitch` user is hostile (the
soak in bench/run, one such PBX among the others):
  endless  after the subscription's reply, one header line that never ends (up to 1.5 GiB)
  flood    250 events of 4 MiB before the reply to `event plain`
  inject   gateway states carrying line breaks and a forged metrics line (events, xmlstatus)
  flap     the gateway flaps 3,000 times right after the subscription
The status file then holds "connections N".

SIGUSR1: send --events events to every subscribed connection, each a state change
(FAIL_WAIT/DOWN, then REGED/UP, alternating), then write "sent N" to --status.
The status file always holds "subscribed N" before that.

Usage: bench/esl_sim.py --listen 127.0.0.1:18021 --status FILE [--events 10] [--mode good]
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
        self.connections = 0

    @staticmethod
    def event(gw, state, ping):
        body = (f"Event-Name: CUSTOM\nCore-UUID: sim\nEvent-Subclass: sofia%3A%3Agateway_state\n"
                f"Gateway: {gw}\nState: {state}\nPing-Status: {ping}\n\n").encode()
        return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body

    async def misbehave(self, writer, gateway):
        mode = self.a.mode
        if mode == "endless":
            writer.write(b"Content-Type: ")
            chunk = b"X" * (1 << 20)
            for _ in range(1536):
                writer.write(chunk)
                await writer.drain()
        elif mode == "flap":
            for k in range(3000):
                writer.write(self.event(gateway, *(("FAIL_WAIT", "DOWN") if k % 2 == 0 else ("REGED", "UP"))))
            await writer.drain()
        elif mode == "inject":
            forged = "%0Aswitchyard_gateway_healthy%7Bgateway%3D%22wavix%22%2Chost%3D%22pbx002%22%7D%201%0A"
            writer.write(self.event(gateway, "FAIL_WAIT" + forged, "DOWN"))
            await writer.drain()

    def status(self, text):
        with open(self.a.status, "w") as f:
            f.write(text + "\n")

    async def handle(self, reader, writer):
        writer.write(b"Content-Type: auth/request\n\n")
        gateway = "wavix"
        if self.a.mode != "good":
            self.connections += 1
            self.status(f"connections {self.connections}")
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
                    if self.a.mode == "flood":
                        body = b"Event-Name: CUSTOM\nX-Filler: " + b"y" * (4 * 1024 * 1024 - 4096) + b"\n\n"
                        for _ in range(250):
                            writer.write(b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body)
                            await writer.drain()
                    writer.write(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
                    if self.a.mode != "good":
                        await self.misbehave(writer, gateway)
                        continue
                    self.subscribed.append((writer, gateway))
                    self.status(f"subscribed {len(self.subscribed)}")
                elif cmd.startswith("api sofia xmlstatus gateway "):
                    gateway = cmd.split()[-1]
                    body = XML.format(name=gateway).encode()
                    if self.a.mode == "inject":
                        body = body.replace(b"<state>REGED", b"<state>REGED&#10;switchyard_gateway_healthy 1&#10;")
                    writer.write(b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body)
                else:
                    writer.write(b"Content-Type: command/reply\nReply-Text: -ERR command not found\n\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self.subscribed = [(w, g) for w, g in self.subscribed if w is not writer]

    async def fire(self):
        for k in range(self.a.events):
            state, ping = ("FAIL_WAIT", "DOWN") if k % 2 == 0 else ("REGED", "UP")
            for writer, gw in self.subscribed:
                writer.write(self.event(gw, state, ping))
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
    ap.add_argument("--mode", default="good", choices=["good", "endless", "flood", "inject", "flap"])
    asyncio.run(Sim(ap.parse_args()).main())


if __name__ == "__main__":
    main()

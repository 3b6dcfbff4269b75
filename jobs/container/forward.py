"""Runs inside a container job, which has no network: listens on the container's own
loopback and carries each connection to the worker's tracking relay over the unix
socket mounted next to this file, then runs the job's command and exits as it does.

Usage: python3 forward.py PORT SOCKET COMMAND...

Standard library only (it runs on the job image's python). The container's init is
PID 1 and forwards signals here; this passes them on to the command."""

import signal
import socket
import subprocess
import sys
import threading


def pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def carry(client: socket.socket, path: str) -> None:
    relay = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        relay.connect(path)
    except OSError:
        client.close()
        relay.close()
        return
    back = threading.Thread(target=pipe, args=(relay, client), daemon=True)
    back.start()
    pipe(client, relay)
    back.join()
    client.close()
    relay.close()


def serve(listener: socket.socket, path: str) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=carry, args=(client, path), daemon=True).start()


def main(argv: list[str]) -> int:
    port, path, command = int(argv[1]), argv[2], argv[3:]
    # Listening before the command starts: its first request never finds the port closed.
    listener = socket.create_server(("127.0.0.1", port))
    threading.Thread(target=serve, args=(listener, path), daemon=True).start()
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        print(f"cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
        return 127
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda number, _frame: child.send_signal(number))
    code = child.wait()
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The pyarrow.flight side of the bulk Flight bench (`cargo bench --bench flight_bulk`).

`benches/flight_bulk.rs` starts this script twice, with the project's venv
(`scripts/python-env target/python-env`):

- `flight_pyarrow.py serve --ipc FILE`: the C++ Flight server of pyarrow. Loads the Arrow IPC
  stream FILE fully into memory and serves that table for any ticket on
  grpc://127.0.0.1:<free port>. Prints `port N`, then reads stdin lines: `cpu` answers this
  process's CPU seconds (user + system); EOF shuts the server down.
- `flight_pyarrow.py client`: the pyarrow Flight client. Reads JSON lines
  `{"uri": ..., "ticket": "<base64>", "headers": {"k": "v"}}` on stdin, does one `DoGet` and
  `read_all()` per line, and answers one JSON line
  `{"seconds": s, "rows": n, "bytes": table.nbytes, "cpu": cpu seconds of this read}`, or
  `{"error": "..."}`. One client connection per uri, reused.

The Rust bench does the timing bookkeeping and the report; this script only serves and reads.
"""

import argparse
import base64
import json
import resource
import sys
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight


def cpu_seconds():
    """CPU seconds (user + system) of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class TableServer(flight.FlightServerBase):
    """Streams one in-memory table for any ticket."""

    def __init__(self, table):
        super().__init__("grpc://127.0.0.1:0")
        self._table = table

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(self._table)


def serve(ipc_path):
    with pa.OSFile(ipc_path, "rb") as f:
        table = pa.ipc.open_stream(f).read_all()
    server = TableServer(table)
    # `serve()` blocks; the main thread keeps answering on stdin.
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    print(f"port {server.port}", flush=True)
    for line in sys.stdin:
        if line.strip() == "cpu":
            print(f"{cpu_seconds():.6f}", flush=True)
    server.shutdown()
    thread.join()


def client():
    clients = {}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
            uri = request["uri"]
            c = clients.get(uri)
            if c is None:
                c = flight.FlightClient(uri)
                clients[uri] = c
            ticket = flight.Ticket(base64.b64decode(request["ticket"]))
            headers = [
                (k.encode(), v.encode()) for k, v in request.get("headers", {}).items()
            ]
            options = flight.FlightCallOptions(headers=headers)
            cpu = cpu_seconds()
            started = time.perf_counter()
            table = c.do_get(ticket, options).read_all()
            seconds = time.perf_counter() - started
            cpu = cpu_seconds() - cpu
            answer = {
                "seconds": seconds,
                "rows": table.num_rows,
                "bytes": table.nbytes,
                "cpu": cpu,
            }
            del table
        except Exception as e:  # noqa: BLE001 - every failure goes back to the bench
            answer = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(answer), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve an Arrow IPC stream file")
    s.add_argument("--ipc", required=True, help="Arrow IPC stream file to serve")
    sub.add_parser("client", help="DoGet requests as JSON lines on stdin")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.ipc)
    else:
        client()


if __name__ == "__main__":
    main()

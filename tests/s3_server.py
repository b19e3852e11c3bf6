"""A local S3 server for the lake's object-store tests (and bench/s3_ingest.py).

`moto_s3()` starts moto's `ThreadedMotoServer` on 127.0.0.1 at a free port, makes one bucket with
boto3 and yields its `S3Settings`; the server stops when the context exits. deltalake reads the
settings from the environment (`S3Settings.environment()`), as it does in a user's deployment: rmcore
passes no storage options.

The server runs in a process of its own, not in a thread of the test's: some deltalake calls
(`DeltaTable.history`) hold the GIL while they wait for the server's answer, so a server thread in the
same interpreter could never answer them (the call times out after 180 s).
"""

import logging
import multiprocessing
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.synchronize import Event

import boto3
from moto.server import ThreadedMotoServer

START_SECONDS = 60
"""How long the server process may take to import moto and listen."""


@dataclass(frozen=True)
class S3Settings:
    """Where the local S3 server listens and the bucket made on it."""

    endpoint: str
    bucket: str
    region: str = "us-east-1"
    access_key_id: str = "testing"
    secret_access_key: str = "testing"

    def environment(self) -> dict[str, str]:
        """The variables deltalake (and boto3) read to reach this server; plain HTTP is allowed."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
        }

    def new_lake(self, name: str) -> str:
        """A lake URI under a prefix of its own in the bucket, so tests sharing the server never meet."""
        return f"s3://{self.bucket}/{name}-{uuid.uuid4().hex[:12]}"


def _serve(address: Connection, stop: Event) -> None:
    """Server process: listen on a port the system picks, send it, serve until `stop` is set."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    address.send(server.get_host_and_port())
    stop.wait()
    server.stop()


@contextmanager
def moto_s3(bucket: str = "rmcore-lake") -> Iterator[S3Settings]:
    """moto's S3 server on 127.0.0.1 (in a spawned process) with `bucket` made; stopped on exit."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    stop = context.Event()
    process = context.Process(target=_serve, args=(sender, stop), name="moto-s3", daemon=True)
    process.start()
    try:
        if receiver not in wait([receiver, process.sentinel], START_SECONDS):
            raise RuntimeError(f"moto's S3 server did not start (exit code {process.exitcode})")
        host, port = receiver.recv()
        settings = S3Settings(endpoint=f"http://{host}:{port}", bucket=bucket)
        boto3.client(
            "s3",
            endpoint_url=settings.endpoint,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
        ).create_bucket(Bucket=bucket)
        yield settings
    finally:
        stop.set()
        process.join(START_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()

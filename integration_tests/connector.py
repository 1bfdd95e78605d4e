"""Runs the `source-iterable` CLI as a subprocess and sorts what it prints."""

import json
import signal
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

CONNECTOR = [sys.executable, "-c", "from source_iterable.run import run; run()"]
ALL_STREAMS_TIMEOUT_S = 600


@dataclass
class Output:
    """The protocol messages of one run, by type."""

    returncode: int
    messages: List[Dict[str, Any]]
    stderr: str
    records: Dict[str, List[Dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    states: List[Dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for message in self.messages:
            if message["type"] == "RECORD":
                self.records[message["record"]["stream"]].append(message["record"]["data"])
            elif message["type"] == "STATE":
                self.states.append(message["state"])

    def of_type(self, message_type: str) -> List[Dict[str, Any]]:
        return [m for m in self.messages if m["type"] == message_type]

    @property
    def errors(self) -> List[Dict[str, Any]]:
        return [m["trace"]["error"] for m in self.of_type("TRACE") if m["trace"]["type"] == "ERROR"]

    @property
    def logs(self) -> List[Dict[str, Any]]:
        return [m["log"] for m in self.of_type("LOG")]

    def warnings(self) -> List[str]:
        return [log["message"] for log in self.logs if log["level"] == "WARN"]

    def final_states(self) -> List[Dict[str, Any]]:
        """The last state of each stream, as a `--state` file holds them."""
        latest: Dict[str, Dict[str, Any]] = {}
        for state in self.states:
            latest[state["stream"]["stream_descriptor"]["name"]] = {
                "type": "STREAM",
                "stream": {"stream_descriptor": state["stream"]["stream_descriptor"], "stream_state": state["stream"]["stream_state"]},
            }
        return list(latest.values())

    def stream_statuses(self, stream: str) -> List[str]:
        return [
            m["trace"]["stream_status"]["status"]
            for m in self.of_type("TRACE")
            if m["trace"]["type"] == "STREAM_STATUS" and m["trace"]["stream_status"]["stream_descriptor"]["name"] == stream
        ]


def catalog_for(streams: Mapping[str, Any], names: Sequence[str], incremental: bool = True) -> Dict[str, Any]:
    """A configured catalog selecting `names` from a discovered catalog (`streams` by name)."""
    configured = []
    for name in names:
        stream = streams[name]
        sync_mode = "incremental" if incremental and "incremental" in stream["supported_sync_modes"] else "full_refresh"
        configured.append(
            {
                "stream": stream,
                "sync_mode": sync_mode,
                "destination_sync_mode": "append_dedup" if sync_mode == "incremental" else "overwrite",
                "cursor_field": stream.get("default_cursor_field", []),
                "primary_key": stream.get("source_defined_primary_key", []),
            }
        )
    return {"streams": configured}


class Connector:
    """The CLI, with its files in a temporary directory."""

    def __init__(self, workdir: Optional[Path] = None) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="source-iterable-"))

    def _file(self, name: str, content: Any) -> str:
        path = self.workdir / name
        path.write_text(json.dumps(content))
        return str(path)

    def run(self, *args: str, timeout: float = ALL_STREAMS_TIMEOUT_S) -> Output:
        completed = subprocess.run([*CONNECTOR, *args], capture_output=True, text=True, timeout=timeout)
        return Output(completed.returncode, _parse(completed.stdout), completed.stderr)

    def spec(self) -> Output:
        return self.run("spec")

    def check(self, config: Mapping[str, Any]) -> Output:
        return self.run("check", "--config", self._file("config.json", config))

    def discover(self, config: Mapping[str, Any]) -> Output:
        return self.run("discover", "--config", self._file("config.json", config))

    def streams(self, config: Mapping[str, Any]) -> Dict[str, Any]:
        (catalog,) = self.discover(config).of_type("CATALOG")
        return {stream["name"]: stream for stream in catalog["catalog"]["streams"]}

    def read_args(self, config: Mapping[str, Any], catalog: Mapping[str, Any], state: Optional[list]) -> List[str]:
        args = ["read", "--config", self._file("config.json", config), "--catalog", self._file("catalog.json", catalog)]
        if state is not None:
            args += ["--state", self._file("state.json", state)]
        return args

    def read(self, config: Mapping[str, Any], catalog: Mapping[str, Any], state: Optional[list] = None) -> Output:
        return self.run(*self.read_args(config, catalog, state))

    def start_read(self, config: Mapping[str, Any], catalog: Mapping[str, Any], state: Optional[list] = None) -> subprocess.Popen:
        """Starts a read without waiting for it; `finished(process)` collects its output."""
        args = self.read_args(config, catalog, state)
        return subprocess.Popen([*CONNECTOR, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def read_until(
        self, config: Mapping[str, Any], catalog: Mapping[str, Any], stop_after_states: int, state: Optional[list] = None
    ) -> Output:
        """Starts a read and kills it (SIGKILL) once `stop_after_states` STATE messages came out."""
        process = subprocess.Popen(
            [*CONNECTOR, *self.read_args(config, catalog, state)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        lines: List[str] = []
        states = 0
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith('{"type":"STATE"'):
                states += 1
                if states >= stop_after_states:
                    process.send_signal(signal.SIGKILL)
                    break
        process.wait()
        return Output(process.returncode, _parse("".join(lines)), "")


def finished(process: subprocess.Popen, timeout: float = ALL_STREAMS_TIMEOUT_S) -> Output:
    """The output of a read started with `Connector.start_read`, once it ended."""
    stdout, stderr = process.communicate(timeout=timeout)
    return Output(process.returncode, _parse(stdout), stderr)


def _parse(stdout: str) -> List[Dict[str, Any]]:
    messages = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                messages.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return messages

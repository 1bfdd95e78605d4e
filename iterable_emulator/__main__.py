"""Run the emulator from a shell, for demos and benchmarks.

    python -m iterable_emulator --port 8080 --seed 1 --records-per-type 1000000

prints the base URL and API key, then serves until Ctrl-C. For example, to time a big export:

    URL='http://127.0.0.1:8080/api/export/data.json?dataTypeName=emailSend&startDateTime=2024-01-01+00:00:00'
    time curl -s -H 'Api-Key: emulator-api-key' "$URL&endDateTime=2024-03-01+00:00:00" | wc -l
"""

import argparse
import threading

from .config import EmulatorConfig
from .indexing import NO_DELAY, IndexingDelays
from .server import IterableEmulator


def _arguments() -> argparse.Namespace:
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m iterable_emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--start", default=defaults.start, help="data start, ISO (default %(default)s)")
    parser.add_argument("--end", default=defaults.end, help="data end, ISO, exclusive (default %(default)s)")
    parser.add_argument("--records-per-type", type=int, default=defaults.records_per_type)
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--lists", type=int, default=defaults.lists)
    parser.add_argument("--listed-users", type=int, default=defaults.listed_users,
                        help="only the first N users are list members (default: every user)")
    parser.add_argument("--campaigns", type=int, default=defaults.campaigns)
    parser.add_argument("--max-page-size", type=int, default=defaults.max_page_size)
    parser.add_argument("--api-key", default=defaults.api_key)
    parser.add_argument("--rate-limits", action="store_true", help="enforce Iterable's rate limits")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiplies rate-limit windows and export job durations")
    parser.add_argument("--no-late-indexing", action="store_true",
                        help="index every export record at its createdAt (default: 2%% up to a day late)")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    config = EmulatorConfig(
        seed=args.seed, start=args.start, end=args.end, records_per_type=args.records_per_type, users=args.users,
        lists=args.lists, listed_users=args.listed_users, campaigns=args.campaigns, max_page_size=args.max_page_size,
        api_key=args.api_key, indexing_delays=IndexingDelays(NO_DELAY) if args.no_late_indexing else IndexingDelays(),
    )
    with IterableEmulator(config, host=args.host, port=args.port) as emulator:
        emulator.faults.rate_limits_enabled = args.rate_limits
        emulator.faults.time_scale = args.time_scale
        print(f"base_url={emulator.base_url}", flush=True)
        print(f"api_key={emulator.api_key}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

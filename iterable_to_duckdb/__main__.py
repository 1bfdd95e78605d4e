"""`python -m iterable_to_duckdb`: the same as the console script `iterable-to-duckdb`."""

import sys

from iterable_to_duckdb.sync import main

sys.exit(main())

"""peernet: the command line, the demo network and development servers.

This package sits above `node` and `hub` (it is the only code allowed to import both): the
`peernet` click command, `peernet demo`, and a throwaway PostgreSQL for tests and benchmarks.
"""

__all__: list[str] = []

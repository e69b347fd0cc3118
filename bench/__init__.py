"""collabdesk's benchmark suite: `python -m bench` lists the benchmarks, `python -m bench
NAME [--quick] [--json] [--database-url URL]` runs one (docs/benchmarks.md)."""

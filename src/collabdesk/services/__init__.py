"""Use cases. Each opens one unit of work, loads, calls the domain and commits once."""

"""The course's benchmarks, run by `make bench` (never by `make test`)."""

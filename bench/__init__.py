"""Benchmarks: load generators run by hand or by `make bench`; numbers go in notes, not tests."""

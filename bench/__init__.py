"""The benchmark suite: `bench/run [GROUP…] [--quick]` measures, docs/PERFORMANCE.md shows.

Every figure is measured on this machine against the broker of scripts/kafka; none is typed
in. Nothing here asserts a timing: the test suite never depends on how fast a machine is.
"""

"""The fuzz scripts here are run by hand (``python tests/fuzz/fuzz_logs.py``), never by pytest."""

collect_ignore_glob = ["*.py"]

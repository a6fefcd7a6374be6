"""The workbench's screens: workload, query, paste, compare, export, connect, help."""

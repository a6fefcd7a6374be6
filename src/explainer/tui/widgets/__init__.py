"""Widgets the workbench's screens share (plan tree, clipboard copy)."""

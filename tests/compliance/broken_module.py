"""A module that fails as it is imported, named as a screening backend by tests/compliance/test_checks.py."""

raise RuntimeError("this module cannot be imported")

"""Runnable examples of ``tutelage.improve`` on your own agent (each is also run by the test suite)."""

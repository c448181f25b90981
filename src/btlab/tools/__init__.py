"""Deployment tools, above the library and its command line: each is a module run with
`python -m btlab.tools.<name>` (`warmup`: fill numba's cache, as the container image build does).
Nothing in btlab imports them."""

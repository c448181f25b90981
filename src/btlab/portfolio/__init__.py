"""Portfolios (SPEC §8): many symbols traded from one cash account.

`dataset` holds `PortfolioDataset` (K single-symbol datasets on one union clock).
"""

"""Portfolios (SPEC §8): many symbols traded from one cash account.

`dataset` holds `PortfolioDataset` (K single-symbol datasets on one union clock); `features`
the `PortfolioFeatureStore` (each feature on each symbol's own bars, shifted onto the clock);
`strategies` the portfolio strategy registry (per_symbol, equal_weight, inverse_vol,
xs_momentum).
"""

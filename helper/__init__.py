"""The helper aggregator of shared aggregation (DESIGN 7.1 item 2): a third server kind.

A helper is run by an organisation other than the hub's (the board, a university, another
state's hub). It holds one additive share per node-month, sealed to it and relayed by the
hub, and answers the hub's signed rounds with its noised share-sum per group. Alone, it
sees only uniformly random shares; the published figures are DP if either it or the hub
follows the protocol. It imports `protocol` and `federation` only (tests/test_layering.py).
"""

"""StellarOps Python nodes: the erldist library, node roles and the command line."""

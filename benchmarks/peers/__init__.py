"""benchmarks/hpo_peers.py's parts: the shared trial runner (basset's public API only), one
module per engine, the data sets, the summary and the curves."""

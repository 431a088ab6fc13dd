"""Reynolds benchmarks: each module starts a real cluster, measures one thing and prints one JSON document."""

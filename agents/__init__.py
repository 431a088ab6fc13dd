"""Reynolds agents: a shared runtime plus one package per specialist agent type."""

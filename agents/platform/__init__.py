"""Platform specialist agent (pool ``platform``): Power Platform solution packages, environments and
deployment plans, the ``pac`` CLI when it is installed, and Microsoft Graph when credentials exist."""

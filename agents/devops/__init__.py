"""The devops-polyglot agent: GitHub, CI/CD files, Docker/Compose, git and secret scanning."""

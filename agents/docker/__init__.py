"""The docker agent: containers, logs, health and restarts through the Docker socket."""

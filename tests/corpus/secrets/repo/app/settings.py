"""Django-style settings with one real leak and the usual look-alikes."""

import os

SECRET_KEY = os.environ["SECRET_KEY"]
DATABASES = {"default": {"PASSWORD": os.environ.get("DB_PASSWORD", "")}}
AWS_ACCESS_KEY_ID = "{{AWS_KEY}}"
GITHUB_TOKEN_PLACEHOLDER = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
password_file = "/run/secrets/db_password"
ROLE_ID = "AROAQ3JZ7XK2M4PLN8RT"

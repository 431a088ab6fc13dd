# A typical small Python service, written with tabs after the instructions (as many editors leave them).
FROM	python:3.12-slim

ENV	PYTHONDONTWRITEBYTECODE=1 \
	PYTHONUNBUFFERED=1

WORKDIR	/app
RUN	apt-get update \
	&& apt-get install -y gcc libpq-dev \
	&& pip install psycopg2
COPY	requirements.txt .
RUN	pip install -r requirements.txt
COPY	. .
EXPOSE	8000
CMD	gunicorn app:app --bind 0.0.0.0:8000

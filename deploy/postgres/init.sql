-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d): MLflow and Prefect each
-- keep their tables (and their own alembic_version) in a database of their own; shelfcast's prediction store
-- uses POSTGRES_DB.
CREATE DATABASE mlflow;
CREATE DATABASE prefect;

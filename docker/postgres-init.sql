-- One database per server on the shared PostgreSQL (compose.yaml mounts this file into
-- /docker-entrypoint-initdb.d/, which runs it once, on an empty data volume).
CREATE DATABASE hub;
CREATE DATABASE metro_fire;
CREATE DATABASE county_ems;
CREATE DATABASE river_pd;

-- Run once by the postgres image when its volume is new: the database of Raspberry's gateway
-- state (request cache, ledger, budgets, rate limits), beside Prefect's own.
CREATE DATABASE raspberry OWNER prefect;

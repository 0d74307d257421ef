-- Each system's own quotas (docs/quotas.md): requests per second, result streams open at
-- once and SQL queries running at once, per token of the system. NULL is the server default
-- (`--quota-rps`, `--quota-streams`, `--quota-sql`); a system without a row has the defaults
-- for all three. Written by admins (`PUT /api/v1/systems/{id}/quotas`), which bumps the
-- generation: every server reloads its policy and so the quotas, never per request.
CREATE TABLE system_quotas (
    system_id BIGINT PRIMARY KEY REFERENCES systems (id),
    requests_per_second BIGINT,
    streams BIGINT,
    sql_queries BIGINT,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
)

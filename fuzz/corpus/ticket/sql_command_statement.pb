
Ctype.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery

SELECT 1

Ktype.googleapis.com/arrow.flight.protocol.sql.CommandPreparedStatementQuery
no such handle